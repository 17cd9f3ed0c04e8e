/**
 * The bank examples (examples/bank-<language>) in integration tests, one
 * module a job:
 *   banks/process.ts    a child process with its output read as log lines
 *   banks/launch.ts     each language's bank: launched, waited for, its ConformanceHook
 *   banks/databases.ts  each bank's own database on one PostgreSQL server
 *   banks/testbed.ts    namespace, server, operator and banks of one test file
 *   banks/transfers.ts  transfers as DistributedTransactions, plans, what an outcome means
 *   banks/watch.ts      the test's watch of the transactions' phases
 *   banks/ledger.ts     a bank's ledger read from its database, and judged
 *   banks/kit.ts        the conformance kit against a bank
 */
export * from './banks/databases.js';
export * from './banks/kit.js';
export * from './banks/launch.js';
export * from './banks/ledger.js';
export * from './banks/process.js';
export * from './banks/testbed.js';
export * from './banks/transfers.js';
export * from './banks/watch.js';

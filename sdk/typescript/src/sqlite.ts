/**
 * `@kubetx/participant/sqlite`: the barrier and the message outbox on SQLite
 * through better-sqlite3 (an optional peer dependency: install it, and
 * @types/better-sqlite3 for TypeScript, to use this entry point).
 */
export { SqliteBarrier, type SqliteBarrierOptions } from './sqlite-barrier.js';
export { SqliteOutbox, type SqliteOutboxOptions } from './outbox-sqlite.js';

/**
 * The TypeScript example participant (examples/bank-ts, the same bank as
 * examples/bank-go on the TS SDK's PgBarrier) through the real operator: two
 * banks, "alpha" and "beta", each a bank-ts process with its own PostgreSQL
 * database and injected transient faults (UNAVAILABLE before or after
 * committing), and 20 concurrent transfers between them, half TCC and half
 * Saga, some over the balance so they are refused and roll back, one with a
 * malformed payload (INVALID_ARGUMENT, rolled back at once). The operator is
 * SIGKILLed and restarted once while they run.
 *
 * Checked on the banks' own data: money is neither made nor lost, nothing
 * stays held or pending, each committed transfer moved exactly its amount and
 * each rolled-back one nothing, no effect was applied twice (`applied`), and
 * the audit agrees with each bank's kubetx_barrier table. A second test runs
 * the conformance kit against a bank of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BankTestbed,
  PhaseWatch,
  REFUSED_FOR_FUNDS,
  bankLauncher,
  committedPhase,
  effectProblems,
  expectedBalances,
  faultLines,
  openAccounts,
  openingTotal,
  outcomes,
  readAccount,
  readBanks,
  rolledBackPhase,
  runConformanceKit,
  seededPlan,
  sendersAndReceivers,
  transferTx,
  type BankLauncher,
  type BankProcess,
  type Transfer,
  type TransferTxOptions,
} from '../support/banks.js';

const TRANSFERS = 20;
const FAULT_RATE = 0.2;
const REFUSED_EVERY = 5; // every 5th transfer asks for more than any account holds
const OVER_BALANCE = 1_000_000;
const BAD_PAYLOAD = 'transfer-bad-payload';

type BankName = 'alpha' | 'beta';
const BANKS: BankName[] = ['alpha', 'beta'];
/** Senders only send and receivers only receive (no Saga credit is spent before its compensation). */
const ACCOUNTS: Record<BankName, { senders: string[]; receivers: string[] }> = {
  alpha: { senders: ['a1', 'a2', 'a3'], receivers: ['ar1', 'ar2'] },
  beta: { senders: ['b1', 'b2', 'b3'], receivers: ['br1', 'br2'] },
};
const OPENING = { sender: 1_000, receiver: 500 };
const OPENING_BALANCES = sendersAndReceivers(ACCOUNTS, OPENING);

let bed: BankTestbed;
let launcher: BankLauncher;
const banks: Partial<Record<BankName, BankProcess>> = {};
const log = (m: string) => process.stderr.write(`[bank-ts] ${m}\n`);

const transferTxOf = (t: Transfer<BankName>, payload?: TransferTxOptions<BankName>['payload']) =>
  transferTx(t, { namespace: bed.ns, address: (b) => banks[b]!.address, timeout: '90s', payload });

beforeAll(async () => {
  launcher = await bankLauncher('ts');
  bed = await BankTestbed.start('bank-ts', [...BANKS, 'kit']);
  // Both banks, and a second alpha process beside the first: two processes of one bank creating
  // the schema at the same moment must not trip over each other.
  const [alpha, beta, twin] = await Promise.all([
    bed.startBank(launcher, { name: 'alpha', databaseUrl: bed.url('alpha'), faultRate: FAULT_RATE }),
    bed.startBank(launcher, { name: 'beta', databaseUrl: bed.url('beta'), faultRate: FAULT_RATE }),
    bed.startBank(launcher, { name: 'alpha', databaseUrl: bed.url('alpha') }),
  ]);
  // SIGTERM: a graceful stop, exit code 0.
  await twin!.stop();
  expect(twin!.child.exitCode, twin!.stderr()).toBe(0);
  expect(twin!.lines.some((l) => l.msg === 'bank stopped')).toBe(true);
  Object.assign(banks, { alpha, beta });
  for (const b of BANKS) await openAccounts(banks[b]!.address, OPENING_BALANCES[b]);
  expect(await readAccount(banks.alpha!.address, 'a1')).toMatchObject({ found: true, balance: OPENING.sender, held: 0 });
  await bed.startOperator();
}, 180_000);

afterAll(async () => {
  await bed?.close();
});

describe('bank-ts: the TypeScript example participant', () => {
  it(`${TRANSFERS} TCC and Saga transfers between two banks survive participant faults and an operator SIGKILL`, async () => {
    const started = Date.now();
    const transfers = seededPlan({ seed: 0x7a11, count: TRANSFERS, banks: ['alpha', 'beta'], accounts: ACCOUNTS, refusedEvery: REFUSED_EVERY, overBalance: OVER_BALANCE });
    const watch = await PhaseWatch.start(bed.kc, bed.ns, bed.txs);
    const all = TRANSFERS + 1;
    let kills = 0;
    try {
      const half = TRANSFERS / 2;
      await Promise.all(transfers.slice(0, half).map((t) => bed.txs.create(transferTxOf(t))));
      // A payload the bank can never take: INVALID_ARGUMENT, rolled back at once.
      const bad: Transfer<BankName> = { name: BAD_PAYLOAD, mode: 'TCC', from: { bank: 'alpha', account: 'a1' }, to: { bank: 'beta', account: 'br1' }, amount: 10 };
      await bed.txs.create(transferTxOf(bad, (side) => (side.bank === 'alpha' ? { account: side.account, amount: 'ten' } : { account: side.account, amount: 10 })));
      watch.touch();
      // Kill while the first half runs, once something has moved.
      await watch.until('progress before the kill', () => transfers.slice(0, half).some((t) => watch.phase(t.name) !== ''), 60_000);
      await bed.restartOperator();
      kills++;
      log(`kill at ${watch.terminalCount()}/${watch.phases.size} terminal`);
      await Promise.all(transfers.slice(half).map((t) => bed.txs.create(transferTxOf(t))));
      watch.touch();
      await watch.untilTerminal(all, `all ${all} transfers terminal`, 60_000);
    } finally {
      watch.stop();
    }

    const final = await bed.txs.list(bed.ns);
    expect(final.length).toBe(all);
    const { phase: outcome, message, uidToName } = outcomes(final);
    expect(outcome.get(BAD_PAYLOAD)).toBe('Aborted');
    expect(message.get(BAD_PAYLOAD)).toMatch(/branch out: Try refused: INVALID_ARGUMENT: payload: amount must be an integer/);

    const committed = transfers.filter((t) => outcome.get(t.name) === committedPhase(t.mode));
    const rolledBack = transfers.filter((t) => outcome.get(t.name) === rolledBackPhase(t.mode));
    expect(committed.length + rolledBack.length, `unexpected phases: ${JSON.stringify([...outcome])}`).toBe(TRANSFERS);
    for (const t of transfers.filter((x) => x.amount === OVER_BALANCE)) {
      expect(outcome.get(t.name), t.name).toBe(rolledBackPhase(t.mode));
      expect(message.get(t.name), t.name).toMatch(REFUSED_FOR_FUNDS);
    }
    expect(committed.filter((t) => t.mode === 'TCC').length).toBeGreaterThan(0);
    expect(committed.filter((t) => t.mode === 'Saga').length).toBeGreaterThan(0);

    const read = await readBanks(bed.poolsOf(BANKS), uidToName);
    expect(read.problems).toEqual([]);
    expect(read.total).toBe(openingTotal(OPENING_BALANCES));
    expect(read.balances).toEqual(expectedBalances(OPENING_BALANCES, committed));
    // The bad payload left no trace on the refusing side; its TransIn was tried and cancelled, or never tried.
    expect(read.effects.get(`${BAD_PAYLOAD}/out`)).toBeUndefined();
    expect([undefined, ['Cancel', 'Try']]).toContainEqual(read.effects.get(`${BAD_PAYLOAD}/in`));
    expect(effectProblems(transfers, outcome, read.effects)).toEqual([]);

    const faults = faultLines(BANKS.map((b) => banks[b]!));
    const afterCommit = faults.filter((l) => l.when === 'after').length;
    log(
      `${TRANSFERS} transfers (${TRANSFERS / 2} TCC, ${TRANSFERS / 2} Saga) + 1 bad payload: ${committed.length} committed, ${rolledBack.length} rolled back ` +
        `(${transfers.filter((t) => t.amount === OVER_BALANCE).length} over the balance); ${kills} operator SIGKILL, ` +
        `${faults.length} faults injected (${afterCommit} after the commit); ${Date.now() - started} ms`,
    );
    expect(kills).toBe(1);
    expect(afterCommit).toBeGreaterThan(0);
    expect(faults.length - afterCommit).toBeGreaterThan(0);
  }, 180_000);

  it('passes the conformance kit (tcc, saga) on a bank of its own', async () => {
    // No injected faults here: the kit judges every answer.
    const bank = await bed.startBank(launcher, { name: 'kit', databaseUrl: bed.url('kit') });
    try {
      const { code, report, out } = await runConformanceKit(bank.address);
      const failed = report.rules.filter((r) => !r.pass);
      log(`conformance kit: ${report.passed}/${report.rules.length} rules passed in ${report.durationMs} ms`);
      expect(failed, out).toEqual([]);
      expect(report.rules.length).toBeGreaterThan(0);
      expect(code, out).toBe(0);
    } finally {
      await bank.stop();
    }
  }, 120_000);
});

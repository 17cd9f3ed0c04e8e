/**
 * The Go example participant (examples/bank-go) through the real operator:
 * two banks, "alpha" and "beta", each a bank-go process with its own
 * PostgreSQL database and injected transient faults (UNAVAILABLE before or
 * after committing), and 40 concurrent transfers between them, half TCC and
 * half Saga, some over the balance so they are refused and roll back. The
 * operator is SIGKILLed and restarted three times while they run.
 *
 * Checked on the banks' own data, not on the transactions' word: money is
 * neither made nor lost, nothing stays held or pending, each committed
 * transfer moved exactly its amount and each rolled-back one nothing, no
 * business effect was applied twice (the handlers' `applied` audit rows), and
 * the audit agrees with each bank's kubetx_barrier table.
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
} from '../support/banks.js';

const TRANSFERS = 40;
const WAVES = 4; // transfers are created in waves; the operator is killed during each but the last
const KILLS = WAVES - 1;
const FAULT_RATE = 0.2; // of calls answered UNAVAILABLE, half before and half after committing
const REFUSED_EVERY = 5; // every 5th transfer asks for more than any account holds
const OVER_BALANCE = 1_000_000;

type BankName = 'alpha' | 'beta';
const BANKS: BankName[] = ['alpha', 'beta'];

/**
 * Accounts. Senders only send and receivers only receive, so a Saga TransIn
 * that is compensated always finds its credit unspent (the bank's one
 * retry-until-funded case, README.md, does not arise here).
 */
const ACCOUNTS: Record<BankName, { senders: string[]; receivers: string[] }> = {
  alpha: { senders: ['a1', 'a2', 'a3', 'a4'], receivers: ['ar1', 'ar2'] },
  beta: { senders: ['b1', 'b2', 'b3', 'b4'], receivers: ['br1', 'br2'] },
};
const OPENING = { sender: 1_000, receiver: 500 };
const OPENING_BALANCES = sendersAndReceivers(ACCOUNTS, OPENING);

let bed: BankTestbed;
let launcher: BankLauncher;
const banks: Partial<Record<BankName, BankProcess>> = {};
const log = (m: string) => process.stderr.write(`[bank-go] ${m}\n`);

const transferTxOf = (t: Transfer<BankName>) => transferTx(t, { namespace: bed.ns, address: (b) => banks[b]!.address, timeout: '90s' });

beforeAll(async () => {
  launcher = await bankLauncher('go');
  log(launcher.note);
  bed = await BankTestbed.start('bank-go', [...BANKS, 'kit']);
  const start = (name: BankName) => bed.startBank(launcher, { name, databaseUrl: bed.url(name), faultRate: FAULT_RATE });
  // Both banks at once, and a second alpha process beside the first: two processes of one bank
  // creating the schema at the same moment must not trip over each other.
  const [alpha, beta, twin] = await Promise.all([start('alpha'), start('beta'), start('alpha')]);
  // SIGTERM: a graceful stop, exit code 0.
  await twin!.stop();
  expect(twin!.child.exitCode).toBe(0);
  expect(twin!.lines.some((l) => l.msg === 'bank stopped')).toBe(true);
  Object.assign(banks, { alpha, beta });

  for (const bank of BANKS) {
    await openAccounts(banks[bank]!.address, OPENING_BALANCES[bank]);
    expect(await readAccount(banks[bank]!.address, ACCOUNTS[bank].senders[0]!)).toMatchObject({ found: true, balance: OPENING.sender, held: 0 });
  }
  await bed.startOperator();
}, 600_000);

afterAll(async () => {
  await bed?.close();
});

describe('bank-go: the Go example participant', () => {
  it(`${TRANSFERS} TCC and Saga transfers between two banks survive participant faults and ${KILLS} operator SIGKILLs`, async () => {
    const started = Date.now();
    const transfers = seededPlan({ seed: 0x5eed, count: TRANSFERS, banks: ['alpha', 'beta'], accounts: ACCOUNTS, refusedEvery: REFUSED_EVERY, overBalance: OVER_BALANCE });

    // Our own watch of every transaction: the phase seen last, and when anything last moved.
    const watch = await PhaseWatch.start(bed.kc, bed.ns, bed.txs);
    let kills = 0;
    const perWave = TRANSFERS / WAVES;
    try {
      for (let w = 0; w < WAVES; w++) {
        const wave = transfers.slice(w * perWave, (w + 1) * perWave);
        await Promise.all(wave.map((t) => bed.txs.create(transferTxOf(t))));
        watch.touch();
        if (w === WAVES - 1) break;
        // Kill while this wave runs, once the restarted operator has made progress: a transaction of
        // this wave has moved past Pending, and (after the first kill) more are terminal than at the restart.
        const terminalAtRestart = watch.terminalCount();
        await watch.until(
          `progress before kill ${kills + 1}`,
          () => wave.some((t) => watch.phase(t.name) !== '') && (kills === 0 || watch.terminalCount() > terminalAtRestart || watch.terminalCount() === watch.phases.size),
          60_000,
        );
        await bed.restartOperator();
        kills++;
        log(`kill ${kills} at ${watch.terminalCount()}/${watch.phases.size} terminal`);
        watch.touch();
      }
      await watch.untilTerminal(TRANSFERS, `all ${TRANSFERS} transfers terminal`, 60_000);
    } finally {
      watch.stop();
    }

    // The outcome of every transfer, read afresh.
    const final = await bed.txs.list(bed.ns);
    const { phase: outcome, message, uidToName } = outcomes(final);
    expect(final.length).toBe(TRANSFERS);
    const committed = transfers.filter((t) => outcome.get(t.name) === committedPhase(t.mode));
    const rolledBack = transfers.filter((t) => outcome.get(t.name) === rolledBackPhase(t.mode));
    expect(committed.length + rolledBack.length, `unexpected phases: ${JSON.stringify([...outcome])}`).toBe(TRANSFERS);
    // Every over-balance transfer rolled back, refused by the sending bank for want of funds (not by a
    // timeout); the others may have run out of funds, but not all of them did.
    for (const t of transfers.filter((x) => x.amount === OVER_BALANCE)) {
      expect(outcome.get(t.name), t.name).toBe(rolledBackPhase(t.mode));
      expect(message.get(t.name), t.name).toMatch(REFUSED_FOR_FUNDS);
    }
    expect(committed.filter((t) => t.mode === 'TCC').length).toBeGreaterThan(0);
    expect(committed.filter((t) => t.mode === 'Saga').length).toBeGreaterThan(0);

    // Balances: opening balance, minus what committed transfers took out, plus what they put in; nothing
    // held or pending, effects applied once, and the barrier agrees: every applied effect has its barrier
    // row, and every barrier row of a call has its effect, except null compensations.
    const read = await readBanks(bed.poolsOf(BANKS), uidToName);
    expect(read.problems).toEqual([]);
    expect(read.total).toBe(openingTotal(OPENING_BALANCES));
    expect(read.balances).toEqual(expectedBalances(OPENING_BALANCES, committed));
    // Effects as the outcome says, per transfer and branch.
    expect(effectProblems(transfers, outcome, read.effects)).toEqual([]);

    const faults = faultLines(BANKS.map((b) => banks[b]!));
    // A fault after the commit loses the answer: the repeat must be answered from the barrier, not applied again.
    const afterCommit = faults.filter((l) => l.when === 'after').length;
    log(
      `${TRANSFERS} transfers (${transfers.filter((t) => t.mode === 'TCC').length} TCC, ${transfers.filter((t) => t.mode === 'Saga').length} Saga): ` +
        `${committed.length} committed, ${rolledBack.length} rolled back (${transfers.filter((t) => t.amount === OVER_BALANCE).length} over the balance); ` +
        `${kills} operator SIGKILLs, ${faults.length} faults injected (${afterCommit} after the commit); ${Date.now() - started} ms`,
    );
    expect(kills).toBe(KILLS);
    expect(afterCommit).toBeGreaterThan(0);
    expect(faults.length - afterCommit).toBeGreaterThan(0);
  }, 240_000);

  it('passes the conformance kit (tcc, saga) on a bank of its own', async () => {
    // No injected faults here: the kit judges every answer.
    const bank = await bed.startBank(launcher, { name: 'kit', databaseUrl: bed.url('kit') });
    try {
      const { code, report, out } = await runConformanceKit(bank.address);
      log(`conformance kit: ${report.passed}/${report.rules.length} rules passed in ${report.durationMs} ms`);
      expect(code, out).toBe(0);
    } finally {
      await bank.stop();
    }
  }, 120_000);
});

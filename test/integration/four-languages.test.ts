/**
 * One transaction, four languages: the bank example in TypeScript
 * (examples/bank-ts), Go (examples/bank-go), Java (examples/bank-java) and
 * Python (examples/bank-python), each on its own SDK and its own database on
 * one PostgreSQL server, with a few injected transient faults, as the
 * branches of the same DistributedTransactions through the real operator:
 *
 *   - a TCC with four branches, TransOut from one bank and TransIn to the
 *     other three (amounts summing to the TransOut), committed, once with the
 *     TransOut in each language;
 *   - the same over the balance: aborted, every branch cancelled;
 *   - a Saga over the four (the TransIns dependsOn the TransOut), completed;
 *   - a Saga whose TransIn to an unknown account is refused after the
 *     TransOut executed: compensated, the TransOut and the other credits undone.
 *
 * Checked on each bank's own database: every balance exactly as expected,
 * nothing held, no pending credits, each (uid, branch, method) applied at most
 * once and in agreement with the bank's kubetx_barrier table, and the sum of
 * all balances unchanged. All four banks are required: a missing one fails the
 * test, naming what to build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import {
  BankTestbed,
  PhaseWatch,
  bankLauncher,
  bankTx,
  effectsByBranch,
  faultLines,
  openAccounts,
  outcomes,
  readBanks,
  type BankLauncher,
  type BankProcess,
  type Language,
} from '../support/banks.js';

const LANGUAGES: Language[] = ['ts', 'go', 'java', 'python'];
const FAULT_RATE = 0.15; // of calls answered UNAVAILABLE, half before and half after committing
/** Each bank: a paying account and a receiving one (which never pays, so a Saga credit is always there to undo). */
const OPENING = { payer: 10_000, payee: 1_000 };
const OVER_BALANCE = 1_000_002;

interface Plan {
  name: string;
  mode: 'TCC' | 'Saga';
  from: Language;
  /** To each other bank: the amount credited (they sum to the TransOut). */
  to: Partial<Record<Language, number>>;
  /** A TransIn whose account does not exist (refused). */
  unknownPayee?: Language;
  expect: 'Committed' | 'Aborted' | 'Completed' | 'Compensated';
}

const others = (l: Language) => LANGUAGES.filter((x) => x !== l);
const split = (l: Language, amounts: [number, number, number]): Partial<Record<Language, number>> =>
  Object.fromEntries(others(l).map((x, i) => [x, amounts[i]!]));

const PLANS: Plan[] = [
  // A committed TCC with the TransOut in each language in turn.
  ...LANGUAGES.map((l, i): Plan => ({ name: `tcc-commit-${l}`, mode: 'TCC', from: l, to: split(l, [100 + i, 200 + i, 300 + i]), expect: 'Committed' })),
  { name: 'tcc-over-balance', mode: 'TCC', from: 'ts', to: split('ts', [333_334, 333_334, 333_334]), expect: 'Aborted' },
  { name: 'saga-complete', mode: 'Saga', from: 'java', to: split('java', [40, 50, 60]), expect: 'Completed' },
  { name: 'saga-refused-credit', mode: 'Saga', from: 'python', to: split('python', [70, 80, 90]), unknownPayee: 'go', expect: 'Compensated' },
];

let bed: BankTestbed;
const banks: Partial<Record<Language, BankProcess>> = {};
const log = (m: string) => process.stderr.write(`[four-languages] ${m}\n`);

function transferTx(p: Plan): DistributedTransaction {
  const total = Object.values(p.to).reduce((s, n) => s + n, 0);
  const out = `out-${p.from}`;
  return bankTx({
    name: p.name,
    namespace: bed.ns,
    mode: p.mode,
    timeout: '60s',
    branches: [
      { name: out, address: banks[p.from]!.address, operation: 'TransOut', payload: { account: 'payer', amount: p.expect === 'Aborted' ? OVER_BALANCE : total } },
      ...Object.entries(p.to).map(([l, amount]) => ({
        name: `in-${l}`,
        address: banks[l as Language]!.address,
        operation: 'TransIn' as const,
        payload: { account: p.unknownPayee === l ? 'nobody' : 'payee', amount },
        ...(p.mode === 'Saga' ? { dependsOn: [out] } : {}),
      })),
    ],
  });
}

beforeAll(async () => {
  const started = Date.now();
  // Every language's bank is required; name each one that cannot be run.
  const launched = await Promise.allSettled(LANGUAGES.map((l) => bankLauncher(l)));
  const missing = launched.flatMap((r, i) => (r.status === 'rejected' ? [`${LANGUAGES[i]}: ${(r.reason as Error).message}`] : []));
  if (missing.length) throw new Error(`four-languages needs all four bank examples; missing:\n${missing.join('\n')}`);
  const launchers = Object.fromEntries(launched.map((r, i) => [LANGUAGES[i], (r as PromiseFulfilledResult<BankLauncher>).value])) as Record<Language, BankLauncher>;
  log(`launchers ready in ${Date.now() - started} ms: ${LANGUAGES.map((l) => `${l} (${launchers[l].note})`).join(', ')}`);

  bed = await BankTestbed.start('four-languages', LANGUAGES);
  const [, ...started4] = await Promise.all([
    bed.startOperator(),
    ...LANGUAGES.map((l, i) => bed.startBank(launchers[l], { name: l, databaseUrl: bed.url(l), faultRate: FAULT_RATE, faultSeed: 4242 + i, startTimeoutMs: 60_000 })),
  ]);
  for (const [i, l] of LANGUAGES.entries()) {
    banks[l] = started4[i] as BankProcess;
    await openAccounts(banks[l]!.address, { payer: OPENING.payer, payee: OPENING.payee });
  }
  log(`four banks and the operator up in ${Date.now() - started} ms`);
}, 300_000);

afterAll(async () => {
  await bed?.close();
});

describe('four languages in one transaction', () => {
  it('TCC and Saga transactions spanning TypeScript, Go, Java and Python banks commit, abort, complete and compensate exactly', async () => {
    const started = Date.now();
    const watch = await PhaseWatch.start(bed.kc, bed.ns, bed.txs);
    try {
      await Promise.all(PLANS.map((p) => bed.txs.create(transferTx(p))));
      watch.touch();
      await watch.untilTerminal(PLANS.length, `all ${PLANS.length} transactions terminal`, 45_000);
    } finally {
      watch.stop();
    }

    const list = await bed.txs.list(bed.ns);
    const final = new Map(list.map((t) => [t.metadata.name!, t]));
    for (const p of PLANS) {
      const t = final.get(p.name)!;
      expect(t.status?.phase, `${p.name}: ${t.status?.message}`).toBe(p.expect);
      const states = Object.fromEntries((t.status?.branches ?? []).map((b) => [b.name, b.state]));
      const ins = Object.keys(p.to).map((l) => `in-${l}`);
      const out = `out-${p.from}`;
      switch (p.expect) {
        case 'Committed':
          expect(states, p.name).toEqual(Object.fromEntries([out, ...ins].map((b) => [b, 'Confirmed'])));
          break;
        case 'Aborted':
          // Every branch cancelled, the refused TransOut's (a null compensation) too.
          expect(states, p.name).toEqual(Object.fromEntries([out, ...ins].map((b) => [b, 'Cancelled'])));
          expect(t.status?.message, p.name).toMatch(new RegExp(`branch ${out}: Try refused: ABORTED: .*insufficient funds`));
          break;
        case 'Completed':
          expect(states, p.name).toEqual(Object.fromEntries([out, ...ins].map((b) => [b, 'Executed'])));
          break;
        case 'Compensated': {
          // The TransOut ran and was undone; the unknown payee's credit was refused; the others were undone or never ran.
          const refused = `in-${p.unknownPayee}`;
          expect(states[out], p.name).toBe('Compensated');
          expect(states[refused], p.name).toBe('Refused');
          for (const b of ins.filter((x) => x !== refused)) expect(['Compensated', 'Pending'], `${p.name}/${b}`).toContain(states[b]);
          expect(t.status?.message, p.name).toMatch(new RegExp(`branch ${refused}: Execute refused: ABORTED: .*nobody`));
          break;
        }
      }
    }

    // Balances, on each bank's own database: opening, minus what committed transfers took out, plus what they put in.
    const expected: Record<string, number> = {};
    for (const l of LANGUAGES) {
      expected[`${l}/payer`] = OPENING.payer;
      expected[`${l}/payee`] = OPENING.payee;
    }
    for (const p of PLANS.filter((x) => x.expect === 'Committed' || x.expect === 'Completed')) {
      for (const [l, amount] of Object.entries(p.to)) {
        expected[`${p.from}/payer`]! -= amount;
        expected[`${l}/payee`]! += amount;
      }
    }
    // Each ledger sound (nothing held or pending, effects once, the barrier agreeing), with only its own branches.
    const read = await readBanks(bed.poolsOf(LANGUAGES), outcomes(list).uidToName);
    expect(read.problems, 'the banks\' ledgers').toEqual([]);
    for (const l of LANGUAGES) {
      expect([...read.ledgers[l].accounts.keys()].sort(), l).toEqual(['payee', 'payer']);
      for (const k of effectsByBranch(read.ledgers[l]).keys()) {
        const b = k.split('/')[1]!;
        expect(b.endsWith(`-${l}`), `${l} bank applied ${b}, another bank's branch`).toBe(true);
      }
    }
    expect(read.balances).toEqual(expected);
    expect(read.total).toBe(LANGUAGES.length * (OPENING.payer + OPENING.payee));
    const effects = read.effects; // "<transaction>/<branch>" → methods applied

    // Effects per branch, as the outcome says.
    for (const p of PLANS) {
      const out = `out-${p.from}`;
      const ins = Object.keys(p.to).map((l) => `in-${l}`);
      const got = (b: string) => effects.get(`${p.name}/${b}`) ?? [];
      switch (p.expect) {
        case 'Committed':
          for (const b of [out, ...ins]) expect(got(b), `${p.name}/${b}`).toEqual(['Confirm', 'Try']);
          break;
        case 'Aborted':
          expect(got(out), `${p.name}/${out}`).toEqual([]);
          for (const b of ins) expect([[], ['Cancel', 'Try']], `${p.name}/${b}: ${got(b)}`).toContainEqual(got(b));
          break;
        case 'Completed':
          for (const b of [out, ...ins]) expect(got(b), `${p.name}/${b}`).toEqual(['Execute']);
          break;
        case 'Compensated':
          expect(got(out), `${p.name}/${out}`).toEqual(['Compensate', 'Execute']);
          expect(got(`in-${p.unknownPayee}`), p.name).toEqual([]);
          for (const b of ins.filter((x) => x !== `in-${p.unknownPayee}`)) expect([[], ['Compensate', 'Execute']], `${p.name}/${b}: ${got(b)}`).toContainEqual(got(b));
          break;
      }
    }

    const faults = LANGUAGES.map((l) => [l, faultLines([banks[l]!]).length] as const);
    log(
      `${PLANS.length} transactions over ${LANGUAGES.length} languages (${PLANS.map((p) => `${p.name} ${p.expect}`).join(', ')}); ` +
        `faults injected: ${faults.map(([l, n]) => `${l} ${n}`).join(', ')}; ${Date.now() - started} ms`,
    );
    // The faults are drawn per call (seeded, but the calls' order is not fixed): some bank took some.
    expect(faults.reduce((s, [, n]) => s + n, 0)).toBeGreaterThan(0);
  }, 120_000);
});

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
import * as k8s from '@kubernetes/client-node';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import {
  bankLauncher,
  bankPool,
  createDatabases,
  effectsByBranch,
  ledgerProblems,
  openAccounts,
  readLedger,
  startBank,
  type BankLauncher,
  type BankProcess,
  type Language,
} from '../support/banks.js';
import { freshNamespace, kubeConfig, kubeconfigPath, whileProgressing } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions, terminal } from '../support/payment.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';
import { TransactionWatch } from '../support/tx-watch.js';

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

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let pgServer: PostgresServer | undefined;
const pools: Partial<Record<Language, pg.Pool>> = {};
const banks: Partial<Record<Language, BankProcess>> = {};
let operator: OperatorProcess | undefined;
const log = (m: string) => process.stderr.write(`[four-languages] ${m}\n`);

function transferTx(p: Plan): DistributedTransaction {
  const total = Object.values(p.to).reduce((s, n) => s + n, 0);
  const branch = (name: string, language: Language, operation: string, account: string, amount: number) => ({
    name,
    endpoint: { address: banks[language]!.address },
    operation,
    payload: { account, amount },
    callTimeout: '5s',
    ...(p.mode === 'Saga' && operation === 'TransIn' ? { dependsOn: [`out-${p.from}`] } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: p.name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: p.mode,
      timeout: '60s',
      retry: { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 },
      branches: [
        branch(`out-${p.from}`, p.from, 'TransOut', 'payer', p.expect === 'Aborted' ? OVER_BALANCE : total),
        ...Object.entries(p.to).map(([l, amount]) => branch(`in-${l}`, l as Language, 'TransIn', p.unknownPayee === l ? 'nobody' : 'payee', amount)),
      ],
    },
  } as DistributedTransaction;
}

beforeAll(async () => {
  const started = Date.now();
  // Every language's bank is required; name each one that cannot be run.
  const launched = await Promise.allSettled(LANGUAGES.map((l) => bankLauncher(l)));
  const missing = launched.flatMap((r, i) => (r.status === 'rejected' ? [`${LANGUAGES[i]}: ${(r.reason as Error).message}`] : []));
  if (missing.length) throw new Error(`four-languages needs all four bank examples; missing:\n${missing.join('\n')}`);
  const launchers = Object.fromEntries(launched.map((r, i) => [LANGUAGES[i], (r as PromiseFulfilledResult<BankLauncher>).value])) as Record<Language, BankLauncher>;
  log(`launchers ready in ${Date.now() - started} ms: ${LANGUAGES.map((l) => `${l} (${launchers[l].note})`).join(', ')}`);

  kc = kubeConfig();
  ns = await freshNamespace(kc, 'four-languages');
  txs = transactions(kc);
  pgServer = await startPostgres({ database: 'four_languages' });
  const urls = await createDatabases(pgServer, LANGUAGES);
  const [operatorStarted, ...started4] = await Promise.all([
    startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] }),
    ...LANGUAGES.map((l, i) => startBank(launchers[l], { name: l, databaseUrl: urls[l]!, faultRate: FAULT_RATE, faultSeed: 4242 + i, startTimeoutMs: 60_000 })),
  ]);
  operator = operatorStarted as OperatorProcess;
  for (const [i, l] of LANGUAGES.entries()) {
    banks[l] = started4[i] as BankProcess;
    pools[l] = bankPool(pgServer, l);
    await openAccounts(banks[l]!.address, { payer: OPENING.payer, payee: OPENING.payee });
  }
  log(`four banks and the operator up in ${Date.now() - started} ms`);
}, 300_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await Promise.all(LANGUAGES.map((l) => banks[l]?.stop()));
  await stopPostgres(pgServer, LANGUAGES.map((l) => pools[l]));
});

describe('four languages in one transaction', () => {
  it('TCC and Saga transactions spanning TypeScript, Go, Java and Python banks commit, abort, complete and compensate exactly', async () => {
    const started = Date.now();
    const phases = new Map<string, string>();
    let lastProgress = Date.now();
    const watch = new TransactionWatch(kc, ns, (obj) => {
      const phase = obj.status?.phase ?? '';
      if (phases.get(obj.metadata.name!) !== phase) lastProgress = Date.now();
      phases.set(obj.metadata.name!, phase);
    });
    await watch.start();
    try {
      await Promise.all(PLANS.map((p) => txs.create(transferTx(p))));
      lastProgress = Date.now();
      await whileProgressing(
        `all ${PLANS.length} transactions terminal`,
        async () => ([...phases.values()].filter((p) => terminal.has(p)).length === PLANS.length ? true : undefined),
        () => lastProgress,
        45_000,
        async () => {
          const open = (await txs.list(ns)).filter((t) => !terminal.has(t.status?.phase ?? ''));
          return open.map((t) => `${t.metadata.name}: ${t.status?.phase} ${t.status?.message ?? ''} ${JSON.stringify(t.status?.branches?.map((b) => [b.name, b.state, b.lastError]))}`).join('\n');
        },
      );
    } finally {
      watch.stop();
    }

    const final = new Map((await txs.list(ns)).map((t) => [t.metadata.name!, t]));
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
    const expected = new Map<string, number>();
    for (const l of LANGUAGES) {
      expected.set(`${l}/payer`, OPENING.payer);
      expected.set(`${l}/payee`, OPENING.payee);
    }
    for (const p of PLANS.filter((x) => x.expect === 'Committed' || x.expect === 'Completed')) {
      for (const [l, amount] of Object.entries(p.to)) {
        expected.set(`${p.from}/payer`, expected.get(`${p.from}/payer`)! - amount);
        expected.set(`${l}/payee`, expected.get(`${l}/payee`)! + amount);
      }
    }
    const uidToName = new Map([...final.values()].map((t) => [t.metadata.uid!, t.metadata.name!]));
    const actual = new Map<string, number>();
    let total = 0;
    const effects = new Map<string, string[]>(); // "<transaction>/<branch>" → methods applied
    for (const l of LANGUAGES) {
      const ledger = await readLedger(pools[l]!);
      expect(ledgerProblems(l, ledger), `${l} bank's ledger`).toEqual([]);
      expect([...ledger.accounts.keys()].sort(), l).toEqual(['payee', 'payer']);
      for (const a of ledger.accounts.values()) {
        actual.set(`${l}/${a.id}`, a.balance);
        total += a.balance;
      }
      for (const [k, methods] of effectsByBranch(ledger)) {
        const [u, b] = k.split('/');
        expect(b!.endsWith(`-${l}`), `${l} bank applied ${b}, another bank's branch`).toBe(true);
        effects.set(`${uidToName.get(u!)}/${b}`, methods);
      }
    }
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    expect(total).toBe(LANGUAGES.length * (OPENING.payer + OPENING.payee));

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

    const faults = LANGUAGES.map((l) => [l, banks[l]!.lines.filter((x) => x.msg === 'fault injected').length] as const);
    log(
      `${PLANS.length} transactions over ${LANGUAGES.length} languages (${PLANS.map((p) => `${p.name} ${p.expect}`).join(', ')}); ` +
        `faults injected: ${faults.map(([l, n]) => `${l} ${n}`).join(', ')}; ${Date.now() - started} ms`,
    );
    // The faults are drawn per call (seeded, but the calls' order is not fixed): some bank took some.
    expect(faults.reduce((s, [, n]) => s + n, 0)).toBeGreaterThan(0);
  }, 120_000);
});

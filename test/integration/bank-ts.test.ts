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
import * as k8s from '@kubernetes/client-node';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import {
  bankLauncher,
  bankPool,
  createDatabases,
  effectsByBranch,
  hookClient,
  ledgerProblems,
  openAccounts,
  readLedger,
  runConformanceKit,
  startBank,
  type BankLauncher,
  type BankProcess,
} from '../support/banks.js';
import { freshNamespace, kubeConfig, kubeconfigPath, whileProgressing } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions, terminal } from '../support/payment.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';
import { TransactionWatch } from '../support/tx-watch.js';

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

interface Transfer {
  name: string;
  mode: 'TCC' | 'Saga';
  from: { bank: BankName; account: string };
  to: { bank: BankName; account: string };
  amount: number;
}

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let launcher: BankLauncher;
let pgServer: PostgresServer | undefined;
let urls: Record<string, string>;
const pools: Partial<Record<BankName, pg.Pool>> = {};
const banks: Partial<Record<BankName, BankProcess>> = {};
let operator: OperatorProcess | undefined;
const log = (m: string) => process.stderr.write(`[bank-ts] ${m}\n`);

function transferTx(t: Transfer, payloadOf = (side: Transfer['from']): unknown => ({ account: side.account, amount: t.amount })): DistributedTransaction {
  const branch = (name: 'out' | 'in', side: Transfer['from'], operation: string) => ({
    name,
    endpoint: { address: banks[side.bank]!.address },
    operation,
    payload: payloadOf(side),
    callTimeout: '5s',
    ...(t.mode === 'Saga' && name === 'in' ? { dependsOn: ['out'] } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: t.name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: t.mode,
      timeout: '90s',
      retry: { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 },
      branches: [branch('out', t.from, 'TransOut'), branch('in', t.to, 'TransIn')],
    },
  } as DistributedTransaction;
}

function plan(): Transfer[] {
  let seed = 0x7a11;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  return Array.from({ length: TRANSFERS }, (_, i): Transfer => {
    const fromBank: BankName = i % 4 < 2 ? 'alpha' : 'beta';
    const toBank: BankName = fromBank === 'alpha' ? 'beta' : 'alpha';
    const senders = ACCOUNTS[fromBank].senders;
    const receivers = ACCOUNTS[toBank].receivers;
    return {
      name: `transfer-${String(i).padStart(2, '0')}`,
      mode: i % 2 === 0 ? 'TCC' : 'Saga',
      from: { bank: fromBank, account: senders[Math.floor(i / 4) % senders.length]! },
      to: { bank: toBank, account: receivers[i % receivers.length]! },
      amount: i % REFUSED_EVERY === REFUSED_EVERY - 1 ? OVER_BALANCE : 50 + rand(250),
    };
  });
}

beforeAll(async () => {
  launcher = await bankLauncher('ts');
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'bank-ts');
  txs = transactions(kc);
  pgServer = await startPostgres({ database: 'bank_postgres' });
  urls = await createDatabases(pgServer, [...BANKS, 'kit']);
  // Both banks, and a second alpha process beside the first: two processes of one bank creating
  // the schema at the same moment must not trip over each other.
  const [alpha, beta, twin] = await Promise.all([
    startBank(launcher, { name: 'alpha', databaseUrl: urls.alpha!, faultRate: FAULT_RATE }),
    startBank(launcher, { name: 'beta', databaseUrl: urls.beta!, faultRate: FAULT_RATE }),
    startBank(launcher, { name: 'alpha', databaseUrl: urls.alpha! }),
  ]);
  // SIGTERM: a graceful stop, exit code 0.
  await twin!.stop();
  expect(twin!.child.exitCode, twin!.stderr()).toBe(0);
  expect(twin!.lines.some((l) => l.msg === 'bank stopped')).toBe(true);
  banks.alpha = alpha;
  banks.beta = beta;
  for (const b of BANKS) {
    pools[b] = bankPool(pgServer, b);
    await openAccounts(banks[b]!.address, {
      ...Object.fromEntries(ACCOUNTS[b].senders.map((a) => [a, OPENING.sender])),
      ...Object.fromEntries(ACCOUNTS[b].receivers.map((a) => [a, OPENING.receiver])),
    });
  }
  const hook = hookClient(banks.alpha!.address);
  try {
    expect(await hook.readAccount({ account: 'a1' })).toMatchObject({ found: true, balance: OPENING.sender, held: 0 });
  } finally {
    hook.close();
  }
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
}, 180_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await Promise.all(BANKS.map((b) => banks[b]?.stop()));
  await stopPostgres(pgServer, BANKS.map((b) => pools[b]));
});

describe('bank-ts: the TypeScript example participant', () => {
  it(`${TRANSFERS} TCC and Saga transfers between two banks survive participant faults and an operator SIGKILL`, async () => {
    const started = Date.now();
    const transfers = plan();
    const phases = new Map<string, string>();
    let lastProgress = Date.now();
    const watch = new TransactionWatch(kc, ns, (obj) => {
      const phase = obj.status?.phase ?? '';
      if (phases.get(obj.metadata.name!) !== phase) lastProgress = Date.now();
      phases.set(obj.metadata.name!, phase);
    });
    await watch.start();
    const terminalCount = () => [...phases.values()].filter((p) => terminal.has(p)).length;
    const all = TRANSFERS + 1;
    let kills = 0;
    try {
      const half = TRANSFERS / 2;
      await Promise.all(transfers.slice(0, half).map((t) => txs.create(transferTx(t))));
      // A payload the bank can never take: INVALID_ARGUMENT, rolled back at once.
      const bad: Transfer = { name: BAD_PAYLOAD, mode: 'TCC', from: { bank: 'alpha', account: 'a1' }, to: { bank: 'beta', account: 'br1' }, amount: 10 };
      await txs.create(transferTx(bad, (side) => (side.bank === 'alpha' ? { account: side.account, amount: 'ten' } : { account: side.account, amount: 10 })));
      lastProgress = Date.now();
      // Kill while the first half runs, once something has moved.
      await whileProgressing(
        'progress before the kill',
        async () => (transfers.slice(0, half).some((t) => (phases.get(t.name) ?? '') !== '') ? true : undefined),
        () => lastProgress,
        60_000,
      );
      await operator!.kill('SIGKILL');
      kills++;
      log(`kill at ${terminalCount()}/${phases.size} terminal`);
      operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
      await Promise.all(transfers.slice(half).map((t) => txs.create(transferTx(t))));
      lastProgress = Date.now();
      await whileProgressing(
        `all ${all} transfers terminal`,
        async () => (terminalCount() === all ? true : undefined),
        () => lastProgress,
        60_000,
        async () => {
          const open = (await txs.list(ns)).filter((t) => !terminal.has(t.status?.phase ?? ''));
          return open.map((t) => `${t.metadata.name}: ${t.status?.phase} ${t.status?.message ?? ''} ${JSON.stringify(t.status?.branches?.map((b) => [b.name, b.state, b.lastError]))}`).join('\n');
        },
      );
    } finally {
      watch.stop();
    }

    const final = await txs.list(ns);
    expect(final.length).toBe(all);
    const uid = new Map(final.map((t) => [t.metadata.name!, t.metadata.uid!]));
    const outcome = new Map(final.map((t) => [t.metadata.name!, t.status?.phase ?? '']));
    const message = new Map(final.map((t) => [t.metadata.name!, t.status?.message ?? '']));
    expect(outcome.get(BAD_PAYLOAD)).toBe('Aborted');
    expect(message.get(BAD_PAYLOAD)).toMatch(/branch out: Try refused: INVALID_ARGUMENT: payload: amount must be an integer/);

    const committed = transfers.filter((t) => outcome.get(t.name) === (t.mode === 'TCC' ? 'Committed' : 'Completed'));
    const rolledBack = transfers.filter((t) => outcome.get(t.name) === (t.mode === 'TCC' ? 'Aborted' : 'Compensated'));
    expect(committed.length + rolledBack.length, `unexpected phases: ${JSON.stringify([...outcome])}`).toBe(TRANSFERS);
    for (const t of transfers.filter((x) => x.amount === OVER_BALANCE)) {
      expect(outcome.get(t.name), t.name).toBe(t.mode === 'TCC' ? 'Aborted' : 'Compensated');
      expect(message.get(t.name), t.name).toMatch(/branch out: (Try|Execute) refused: ABORTED: .*insufficient funds/);
    }
    expect(committed.filter((t) => t.mode === 'TCC').length).toBeGreaterThan(0);
    expect(committed.filter((t) => t.mode === 'Saga').length).toBeGreaterThan(0);

    const expected = new Map<string, number>();
    for (const bank of BANKS) {
      for (const a of ACCOUNTS[bank].senders) expected.set(`${bank}/${a}`, OPENING.sender);
      for (const a of ACCOUNTS[bank].receivers) expected.set(`${bank}/${a}`, OPENING.receiver);
    }
    for (const t of committed) {
      expected.set(`${t.from.bank}/${t.from.account}`, expected.get(`${t.from.bank}/${t.from.account}`)! - t.amount);
      expected.set(`${t.to.bank}/${t.to.account}`, expected.get(`${t.to.bank}/${t.to.account}`)! + t.amount);
    }
    const actual = new Map<string, number>();
    let total = 0;
    const effects = new Map<string, string[]>();
    const uidToName = new Map([...uid].map(([n, u]) => [u, n]));
    for (const bank of BANKS) {
      const ledger = await readLedger(pools[bank]!);
      for (const a of ledger.accounts.values()) {
        actual.set(`${bank}/${a.id}`, a.balance);
        total += a.balance;
      }
      expect(ledgerProblems(bank, ledger)).toEqual([]);
      for (const [k, methods] of effectsByBranch(ledger)) {
        const [u, b] = k.split('/');
        effects.set(`${uidToName.get(u!)}/${b}`, methods);
      }
    }
    expect(total).toBe(BANKS.reduce((s, b) => s + ACCOUNTS[b].senders.length * OPENING.sender + ACCOUNTS[b].receivers.length * OPENING.receiver, 0));
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    // The bad payload left no trace on the refusing side; its TransIn was tried and cancelled, or never tried.
    expect(effects.get(`${BAD_PAYLOAD}/out`)).toBeUndefined();
    expect([undefined, ['Cancel', 'Try']]).toContainEqual(effects.get(`${BAD_PAYLOAD}/in`));
    for (const t of transfers) {
      for (const branch of ['out', 'in']) {
        const got = effects.get(`${t.name}/${branch}`) ?? [];
        const ok = outcome.get(t.name);
        if (t.mode === 'TCC') {
          if (ok === 'Committed') expect(got, `${t.name}/${branch}`).toEqual(['Confirm', 'Try']);
          else expect([[], ['Cancel', 'Try']], `${t.name}/${branch}: ${got}`).toContainEqual(got);
        } else if (ok === 'Completed') expect(got, `${t.name}/${branch}`).toEqual(['Execute']);
        else expect([[], ['Compensate', 'Execute']], `${t.name}/${branch}: ${got}`).toContainEqual(got);
      }
    }

    const faultLines = BANKS.flatMap((b) => banks[b]!.lines.filter((l) => l.msg === 'fault injected'));
    const afterCommit = faultLines.filter((l) => l.when === 'after').length;
    log(
      `${TRANSFERS} transfers (${TRANSFERS / 2} TCC, ${TRANSFERS / 2} Saga) + 1 bad payload: ${committed.length} committed, ${rolledBack.length} rolled back ` +
        `(${transfers.filter((t) => t.amount === OVER_BALANCE).length} over the balance); ${kills} operator SIGKILL, ` +
        `${faultLines.length} faults injected (${afterCommit} after the commit); ${Date.now() - started} ms`,
    );
    expect(kills).toBe(1);
    expect(afterCommit).toBeGreaterThan(0);
    expect(faultLines.length - afterCommit).toBeGreaterThan(0);
  }, 180_000);

  it('passes the conformance kit (tcc, saga) on a bank of its own', async () => {
    // No injected faults here: the kit judges every answer.
    const bank = await startBank(launcher, { name: 'kit', databaseUrl: urls.kit! });
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

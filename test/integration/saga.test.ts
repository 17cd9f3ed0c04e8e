/**
 * Saga end to end, and the human's tools (kubectl dtx retry / abort), against
 * the real API server with the operator as a process. The participants are
 * small SagaParticipant servers on the SDK with the SQLite barrier; their
 * journal records every effect in order, which is what the tests check.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { run as dtx } from '../../src/cli/kubectl-dtx.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { Refused, serveParticipant, type Participant } from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';
import { setFault, clearFaults } from '../../examples/payment/faults.js';
import { dbPathIn } from '../../examples/payment/db.js';

/** A saga step service: Execute appends +amount to a journal, Compensate appends −amount. Behaviour switches per branch. */
interface StepService {
  port: number;
  db: Database.Database;
  participant: Participant;
  refuse: Set<string>;
  failCompensate: Set<string>;
  journal(uid: string): Array<{ branch: string; method: string; amount: number }>;
}

async function startStepService(): Promise<StepService> {
  const db = new Database(join(mkdtempSync(join(tmpdir(), 'kubetx-saga-')), 'steps.db'));
  db.exec(`CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT, branch TEXT, method TEXT, amount INTEGER)`);
  const refuse = new Set<string>();
  const failCompensate = new Set<string>();
  const write = (ctx: { uid: string; branch: string; tx: Database.Database }, method: string, amount: number) =>
    ctx.tx.prepare(`INSERT INTO journal (uid, branch, method, amount) VALUES (?, ?, ?, ?)`).run(ctx.uid, ctx.branch, method, amount);
  const participant = await serveParticipant({
    address: '127.0.0.1:0',
    barrier: new SqliteBarrier(db),
    logger: pino({ level: 'silent' }),
    saga: {
      execute: (ctx) => {
        if (refuse.has(ctx.branch)) throw new Refused(`${ctx.branch} says no`);
        write(ctx, 'Execute', (ctx.payload as { amount: number }).amount);
        return { data: { step: ctx.branch } };
      },
      compensate: (ctx) => {
        if (failCompensate.has(ctx.branch)) throw new Error(`${ctx.branch} compensation store unavailable`);
        write(ctx, 'Compensate', -(ctx.payload as { amount: number }).amount);
      },
    },
  });
  return {
    port: participant.port, db, participant, refuse, failCompensate,
    journal: (uid) => db.prepare(`SELECT branch, method, amount FROM journal WHERE uid = ? ORDER BY seq`).all(uid) as Array<{ branch: string; method: string; amount: number }>,
  };
}

let kc: k8s.KubeConfig;
let ns: string;
let steps: StepService;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;

function saga(name: string, extra: Partial<DistributedTransaction['spec']> = {}): DistributedTransaction {
  const branch = (n: string, dependsOn: string[]) => ({
    name: n, endpoint: { address: `127.0.0.1:${steps.port}` }, operation: 'step', payload: { amount: 10 }, callTimeout: '2s', ...(dependsOn.length ? { dependsOn } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'Saga',
      timeout: '30s',
      retry: { initialInterval: '200ms', maxInterval: '1s', multiplier: 2, maxAttempts: 0 },
      branches: [branch('reserve', []), branch('charge', ['reserve']), branch('ship', ['charge'])],
      ...extra,
    },
  };
}

const until = (name: string, phases: string[], timeoutMs?: number) => txs.untilPhase(ns, name, phases, timeoutMs);

async function eventReasons(name: string): Promise<string[]> {
  const list = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
  return list.items.filter((e) => e.regarding?.name === name).map((e) => e.reason ?? '');
}

const cli = async (...args: string[]) => {
  const out: string[] = [];
  const code = await dtx([...args, '-n', ns, '--kubeconfig', kubeconfigPath()], (s) => out.push(s));
  return { code, out: out.join('\n') };
};

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'saga');
  txs = transactions(kc);
  steps = await startStepService();
  pay = await startPayment();
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill();
  await steps?.participant.shutdown(0);
  await pay?.stopAll();
});

describe('Saga', () => {
  it('runs Execute in dependency order → Completed', async () => {
    const created = await txs.create(saga('linear-ok'));
    const tx = await until('linear-ok', ['Completed']);
    expect(tx.status?.branches?.map((b) => b.state)).toEqual(['Executed', 'Executed', 'Executed']);
    expect(steps.journal(created.metadata.uid)).toEqual([
      { branch: 'reserve', method: 'Execute', amount: 10 },
      { branch: 'charge', method: 'Execute', amount: 10 },
      { branch: 'ship', method: 'Execute', amount: 10 },
    ]);
  });

  it('a refused Execute → every executed branch compensated in reverse order, nothing left applied', async () => {
    steps.refuse.add('ship');
    try {
      const created = await txs.create(saga('linear-refused'));
      const tx = await until('linear-refused', ['Compensated']);
      expect(tx.status?.message).toMatch(/ship/);
      expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual([['reserve', 'Compensated'], ['charge', 'Compensated'], ['ship', 'Refused']]);
      const journal = steps.journal(created.metadata.uid);
      expect(journal.map((j) => `${j.method}:${j.branch}`)).toEqual(['Execute:reserve', 'Execute:charge', 'Compensate:charge', 'Compensate:reserve']);
      expect(journal.reduce((s, j) => s + j.amount, 0)).toBe(0);
    } finally {
      steps.refuse.delete('ship');
    }
  });

  it('a compensation that keeps failing spends its budget → Failed with a Warning; kubectl dtx retry resumes it', async () => {
    steps.refuse.add('ship');
    steps.failCompensate.add('reserve');
    let created: DistributedTransaction;
    try {
      created = await txs.create(saga('budget', { retry: { initialInterval: '100ms', maxInterval: '200ms', multiplier: 2, maxAttempts: 2 } }));
      const failed = await until('budget', ['Failed']);
      expect(failed.status?.decision).toBe('Compensate');
      expect(failed.status?.message).toMatch(/reserve/);
      expect(failed.status?.message).toMatch(/compensation store unavailable/);
      expect(failed.status?.branches?.find((b) => b.name === 'reserve')?.attempts).toBe(2);
      await eventually('the RetryBudgetExhausted event', async () => ((await eventReasons('budget')).includes('RetryBudgetExhausted') ? true : undefined));
      // A human fixes the store and asks for a retry.
      steps.failCompensate.delete('reserve');
      const { code, out } = await cli('retry', 'budget');
      expect(code).toBe(0);
      expect(out).toMatch(/retry requested/);
    } finally {
      steps.refuse.delete('ship');
      steps.failCompensate.delete('reserve');
    }
    const tx = await until('budget', ['Compensated']);
    expect(tx.status?.retryAcknowledged).toBe(tx.metadata.annotations?.['kubetx.io/retry']);
    expect(steps.journal(created.metadata.uid).reduce((s, j) => s + j.amount, 0)).toBe(0);
    const shown = await cli('show', 'budget');
    expect(shown.out).toMatch(/Phase:\s+Compensated/);
    expect(shown.out).toMatch(/reserve\s+Compensated/);
    expect(shown.out).toMatch(/RetryBudgetExhausted/);
  });

  it('a dependency cycle (which CEL cannot see) is refused by the operator before any call', async () => {
    const bad = saga('cycle');
    bad.spec.branches[0]!.dependsOn = ['ship'];
    await txs.create(bad);
    const tx = await until('cycle', ['Failed']);
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')?.status).toBe('False');
    await eventually('the InvalidSpec event', async () => ((await eventReasons('cycle')).includes('InvalidSpec') ? true : undefined));
    expect(tx.status?.message).toMatch(/cycle/);
    expect(steps.journal(tx.metadata.uid)).toEqual([]);
  });
});

describe('kubectl dtx abort', () => {
  it('cancels a TCC transaction that has not decided yet', async () => {
    const inventory = dbPathIn(pay.dir, 'inventory');
    setFault(inventory, { method: 'Try', mode: 'hang' });
    pay.addOrders([3001]);
    try {
      await txs.create(payOrder(pay, { name: 'abort-me', namespace: ns, orderId: 3001, timeout: '120s', callTimeout: '1s' }));
      await eventually('a Try in flight', async () => ((await txs.get(ns, 'abort-me')).status?.branches?.some((b) => b.attempts > 0) ? true : undefined));
      const { code } = await cli('abort', 'abort-me', '--reason', 'customer cancelled');
      expect(code).toBe(0);
      const tx = await until('abort-me', ['Aborted']);
      expect(tx.status?.decision).toBe('Cancel');
      expect(tx.status?.message).toMatch(/aborted by user: customer cancelled/);
      expect(tx.status?.abortAcknowledged).toBe('customer cancelled');
      expect(pay.ledgers().order!.orders['3001']!.status).toBe('CANCELED');
    } finally {
      clearFaults(inventory);
    }
  });

  it('is refused, with an Event saying why, once the transaction has decided', async () => {
    pay.addOrders([3002]);
    await txs.create(payOrder(pay, { name: 'too-late', namespace: ns, orderId: 3002 }));
    await until('too-late', ['Committed']);
    await cli('abort', 'too-late', '--reason', 'changed my mind');
    const tx = await eventually('the abort to be acknowledged', async () => {
      const t = await txs.get(ns, 'too-late');
      return t.status?.abortAcknowledged === 'changed my mind' ? t : undefined;
    });
    expect(tx.status?.phase).toBe('Committed');
    await eventually('the AbortRefused event', async () => ((await eventReasons('too-late')).includes('AbortRefused') ? true : undefined));
    expect(pay.ledgers().order!.orders['3002']!.status).toBe('PAID');
  });
});

describe('kubectl dtx retry (TCC)', () => {
  it('a Confirm that keeps failing spends its budget → Failed; fixed, then kubectl dtx retry → Committed', async () => {
    const credit = dbPathIn(pay.dir, 'credit');
    setFault(credit, { method: 'Confirm', mode: 'fail', message: 'credit ledger locked' });
    pay.addOrders([3003]);
    try {
      await txs.create(payOrder(pay, {
        name: 'confirm-budget', namespace: ns, orderId: 3003,
        retry: { initialInterval: '100ms', maxInterval: '200ms', multiplier: 2, maxAttempts: 3 },
      }));
      const failed = await until('confirm-budget', ['Failed']);
      // Decided Confirm before failing: the budget stops the calls, never the decision.
      expect(failed.status?.decision).toBe('Confirm');
      expect(failed.status?.message).toMatch(/credit/);
      expect(failed.status?.message).toMatch(/credit ledger locked/);
      expect(failed.status?.branches?.find((b) => b.name === 'credit')?.attempts).toBe(3);
      await eventually('the RetryBudgetExhausted event', async () => ((await eventReasons('confirm-budget')).includes('RetryBudgetExhausted') ? true : undefined));
      expect(pay.ledgers().order!.orders['3003']!.status).not.toBe('CANCELED');
      clearFaults(credit);
      const { code } = await cli('retry', 'confirm-budget');
      expect(code).toBe(0);
    } finally {
      clearFaults(credit);
    }
    const tx = await until('confirm-budget', ['Committed']);
    expect(tx.status?.retryAcknowledged).toBe(tx.metadata.annotations?.['kubetx.io/retry']);
    expect(tx.status?.branches?.map((b) => b.state)).toEqual(['Confirmed', 'Confirmed', 'Confirmed', 'Confirmed']);
    expect(pay.ledgers().order!.orders['3003']!.status).toBe('PAID');
  });
});

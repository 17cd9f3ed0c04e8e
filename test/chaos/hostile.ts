/**
 * The `hostile` chaos scenario: one tenant does its worst while another pays
 * orders. The hostile namespace holds transactions whose participant accepts
 * every call and never answers (one-hour callTimeout, twice as many as the
 * operator has workers), a participant inventing gRPC status codes, and a
 * script rewriting `kubetx.io/retry` every 200 ms; then it deletes half of its
 * hanging transactions. The victim's transactions must keep every payment
 * invariant and each reach its end within BOUND_MS of its creation — the
 * stated bound by which one tenant may delay another.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually } from '../support/env.js';
import { startHangingParticipant, startMadeUpCodeParticipant } from '../support/hanging-participant.js';
import { startOperator } from '../support/operator.js';
import { payOrder, startPayment, terminal, transactions } from '../support/payment.js';
import type { ChaosContext, ScenarioResult } from './driver.js';
import { checkPayments, type PaymentTx } from './invariants.js';

/** How long one tenant may delay another's transaction (creation → terminal), on a loaded 2-core machine. */
export const BOUND_MS = 15_000;
const WORKERS = 4;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function namespace(kc: k8s.KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

function rawTx(ns: string, name: string, address: string, extra: Partial<DistributedTransaction['spec']> = {}): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: { mode: 'TCC', timeout: '1h', branches: [{ name: 'a', endpoint: { address }, callTimeout: '1h' }, { name: 'b', endpoint: { address }, callTimeout: '1h' }], ...extra },
  };
}

export async function runHostileTenant(ctx: ChaosContext, o: { good: number; spreadMs: number }): Promise<ScenarioResult> {
  const started = Date.now();
  const hostileNs = await namespace(ctx.kc, 'hostile');
  const victimNs = await namespace(ctx.kc, 'victim');
  const txs = transactions(ctx.kc);
  const api = ctx.kc.makeApiClient(k8s.CustomObjectsApi);
  const pay = await startPayment();
  const hang = await startHangingParticipant();
  const madeUp = await startMadeUpCodeParticipant();
  const op = await startOperator({ kubeconfig: ctx.kubeconfigPath, namespaces: [hostileNs, victimNs], args: ['--workers', String(WORKERS), '--max-call-timeout', '20s'] });
  const violations: string[] = [];
  const notes: string[] = [];
  let spamming = true;
  try {
    const hanging = Array.from({ length: WORKERS * 2 }, (_, i) => `hang-${i}`);
    for (const name of hanging) await txs.create(rawTx(hostileNs, name, `127.0.0.1:${hang.port}`));
    await txs.create(rawTx(hostileNs, 'made-up-codes', `127.0.0.1:${madeUp.port}`, { retry: { initialInterval: '100ms', maxInterval: '100ms' } }));
    const spam = (async () => {
      for (let i = 0; spamming; i++) {
        await txs.patchAnnotations(hostileNs, 'made-up-codes', { 'kubetx.io/retry': `spam-${i}` }).catch(() => undefined);
        await delay(200);
      }
    })();
    await eventually('the hostile calls held', async () => (hang.open().length >= WORKERS * 2 ? true : undefined), 60_000);

    const before = pay.ledgers();
    const good: PaymentTx[] = [];
    const createdAt = new Map<string, number>();
    let nextOrder = 400_000;
    for (let i = 0; i < o.good; i++) {
      if (i > 0) await delay(o.spreadMs);
      if (i === Math.floor(o.good / 2)) {
        // Halfway, the hostile tenant deletes half of its hanging transactions (they are driven to Cancel).
        for (const name of hanging.slice(0, WORKERS)) await api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: hostileNs, name });
      }
      const orderId = nextOrder++;
      pay.addOrders([orderId]);
      const name = `good-${orderId}`;
      createdAt.set(name, Date.now());
      await txs.create(payOrder(pay, { name, namespace: victimNs, orderId, timeout: '20s', callTimeout: '2s', mode: i % 2 === 0 ? 'TCC' : 'Saga' }));
      good.push({ name, orderId, qty: 2, credit: 10, mode: i % 2 === 0 ? 'TCC' : 'Saga' });
    }
    const finishedAt = new Map<string, number>();
    const objects = await eventually('victim transactions terminal', async () => {
      const list = await txs.list(victimNs);
      for (const t of list) if (terminal.has(t.status?.phase ?? '') && !finishedAt.has(t.metadata.name)) finishedAt.set(t.metadata.name, Date.now());
      return good.every((g) => finishedAt.has(g.name)) ? list : undefined;
    }, BOUND_MS * 4);
    let slowest = 0;
    for (const g of good) {
      const ms = finishedAt.get(g.name)! - createdAt.get(g.name)!;
      slowest = Math.max(slowest, ms);
      if (ms > BOUND_MS) violations.push(`${g.name}: delayed ${ms} ms by another tenant (bound ${BOUND_MS} ms)`);
    }
    const check = checkPayments({ before, after: pay.ledgers(), created: good, objects });
    violations.push(...check.violations);
    const text = await op.metrics();
    const codes = new Set(text.split('\n').filter((l) => l.startsWith('kubetx_branch_calls_total{')).map((l) => /code="([^"]*)"/.exec(l)?.[1]));
    if ([...codes].some((c) => c?.startsWith('CODE_'))) violations.push(`metric series per invented status code: ${[...codes].join(',')}`);
    const health = await fetch(`http://127.0.0.1:${op.healthPort}/healthz`);
    if (health.status !== 200) violations.push(`/healthz answered ${health.status}`);
    const errors = op.lines.filter((l) => l.msg === 'reconcile failed, will retry').length;
    if (errors > 0) violations.push(`${errors} reconcile errors`);
    notes.push(`slowest victim transaction: ${slowest} ms (bound ${BOUND_MS} ms); hostile calls held: ${hang.open().length}; invented codes answered: ${madeUp.answered()}; code labels: ${[...codes].join(',')}`);
    spamming = false;
    await spam;
    return {
      scenario: 'hostile-tenant',
      transactions: good.length + hanging.length + 1,
      committed: check.committed,
      aborted: check.aborted,
      faults: { hangingTransactions: hanging.length, inventedCodes: madeUp.answered(), deleted: WORKERS },
      seconds: (Date.now() - started) / 1000,
      violations,
      notes,
    };
  } finally {
    spamming = false;
    await op.kill('SIGKILL');
    await hang.stop();
    await madeUp.stop();
    await pay.stopAll();
  }
}

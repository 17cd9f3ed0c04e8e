/**
 * Reliable messages end to end: the operator process, the real API server, an
 * order service (the upstream, with its outbox table and check-back server)
 * and two receivers (inventory, credit), each with its own SQLite file.
 * Every test checks the receivers' databases, not only the status.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  orderMessage,
  placeOrder,
  startOrderService,
  startReceiver,
  type OrderMessageOptions,
  type OrderService,
  type Receiver,
} from '../../examples/message/services.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { MessageRolledBack } from '../../sdk/typescript/src/index.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

const terminal = new Set(['Delivered', 'RolledBack', 'Failed']);

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
let order: OrderService;
let inventory: Receiver;
let credit: Receiver;
let nextOrder = 3000;

const until = (name: string, phases: Iterable<string> = terminal, timeoutMs?: number) => txs.untilPhase(ns, name, phases, timeoutMs);

function options(overrides: Partial<OrderMessageOptions> = {}): OrderMessageOptions {
  const orderId = nextOrder++;
  const at = (port: number) => ({ address: `127.0.0.1:${port}` });
  return {
    name: `order-${orderId}`,
    namespace: ns,
    orderId,
    endpoints: { order: at(order.port), inventory: at(inventory.port), credit: at(credit.port) },
    ...overrides,
  };
}

const stock = () => (inventory.db.prepare(`SELECT stock FROM items`).get() as { stock: number }).stock;
const creditOf = () => (credit.db.prepare(`SELECT credit FROM accounts`).get() as { credit: number }).credit;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'msg');
  txs = transactions(kc);
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-msg-'));
  const logger = pino({ level: process.env.KUBETX_TEST_PARTICIPANT_LOGS ? 'info' : 'silent' });
  order = await startOrderService({ dbPath: join(dir, 'order.db'), address: '127.0.0.1:0', logger });
  inventory = await startReceiver({ name: 'inventory', dbPath: join(dir, 'inventory.db'), address: '127.0.0.1:0', logger });
  credit = await startReceiver({ name: 'credit', dbPath: join(dir, 'credit.db'), address: '127.0.0.1:0', logger });
  // --events all: these tests read the Normal Decided/Delivered Events too.
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--events', 'all'] });
});

afterAll(async () => {
  await operator?.kill();
  await Promise.all([order?.stop(), inventory?.stop(), credit?.stop()]);
});

describe('Message: order → inventory, credit', () => {
  it('the upstream commits → Delivered, each receiver applied exactly once (a lost response is retried and deduplicated)', async () => {
    const stock0 = stock();
    const credit0 = creditOf();
    // checkAfter far away: delivery must come from the decision, not from a check-back.
    const o = options({ checkAfter: '5m' });
    credit.loseResponses(1);
    const { outcome, message } = await placeOrder(kc, order, o);
    expect(outcome).toBe('committed');
    const tx = await until(o.name);

    expect(tx.status?.phase).toBe('Delivered');
    expect(tx.status?.decision).toBe('Deliver');
    expect(tx.status?.message).toBe('delivered to all 2 branches');
    expect(tx.spec.message?.decision).toBe('Commit');
    expect(tx.status?.check).toBeUndefined();
    expect(tx.status?.progress).toBe('2/2');
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'True', reason: 'Delivered' });
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual([
      ['inventory', 'Delivered'],
      ['credit', 'Delivered'],
    ]);
    // credit's first answer was lost: Deliver came twice, the effect happened once.
    expect(tx.status?.branches?.find((b) => b.name === 'credit')?.attempts).toBe(2);
    expect(credit.calls.get(message.uid)).toBe(2);
    expect(inventory.applied(message.uid)).toBe(1);
    expect(credit.applied(message.uid)).toBe(1);
    expect(stock()).toBe(stock0 - 2);
    expect(creditOf()).toBe(credit0 + 10);
    expect(order.db.prepare(`SELECT status FROM orders WHERE id = ?`).get(o.orderId)).toEqual({ status: 'CREATED' });

    const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    const reasons = events.items.filter((e) => e.regarding?.name === o.name).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['Decided', 'Delivered']));
  });

  it('the upstream crashes between its local commit and the decision → check-back answers COMMITTED → delivered', async () => {
    const stock0 = stock();
    const o = options({ checkAfter: '1s' });
    const { outcome, message } = await placeOrder(kc, order, { ...o, crash: 'before-decision' });
    expect(outcome).toBe('crashed-before-decision');
    // Prepared first (or already past it, if the check-back was quick): never delivered before checkAfter.
    const first = await until(o.name, new Set(['Prepared', 'Delivering', 'Delivered']));
    if (first.status?.phase !== 'Prepared') expect(Date.parse(first.status!.decisionTime!) - Date.parse(first.metadata.creationTimestamp!)).toBeGreaterThanOrEqual(1_000);
    const tx = await until(o.name);

    expect(tx.status?.phase).toBe('Delivered');
    expect(tx.spec.message?.decision ?? '').toBe('');
    expect(tx.status?.decision).toBe('Deliver');
    expect(tx.status?.check).toMatchObject({ lastAnswer: 'COMMITTED' });
    expect(tx.status!.check!.attempts).toBeGreaterThanOrEqual(1);
    expect(Date.parse(tx.status!.decisionTime!) - Date.parse(tx.metadata.creationTimestamp!)).toBeGreaterThanOrEqual(1_000);
    const decided = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    const note = decided.items.find((e) => e.regarding?.name === o.name && e.reason === 'Decided')?.note;
    expect(note).toMatch(/check-back: the source answered COMMITTED/);
    expect(inventory.applied(message.uid)).toBe(1);
    expect(credit.applied(message.uid)).toBe(1);
    expect(stock()).toBe(stock0 - 2);
    const m = await operator.metrics();
    expect(counterValue(m, 'kubetx_branch_calls_total', { method: 'CheckPrepared', code: 'OK' })).toBeGreaterThanOrEqual(1);
  });

  it('the upstream rolls back → RolledBack, nothing delivered', async () => {
    const stock0 = stock();
    const credit0 = creditOf();
    const o = options({ checkAfter: '5m' });
    const { outcome, message } = await placeOrder(kc, order, { ...o, failLocal: 'credit limit exceeded' });
    expect(outcome).toBe('rolled-back');
    const tx = await until(o.name);

    expect(tx.status?.phase).toBe('RolledBack');
    expect(tx.status?.decision).toBe('Rollback');
    expect(tx.spec.message?.decision).toBe('Rollback');
    expect(tx.status?.branches?.every((b) => b.state === 'Pending' && b.attempts === 0)).toBe(true);
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(inventory.calls.get(message.uid)).toBeUndefined();
    expect(credit.calls.get(message.uid)).toBeUndefined();
    expect(stock()).toBe(stock0);
    expect(creditOf()).toBe(credit0);
    expect(order.db.prepare(`SELECT count(*) AS n FROM orders WHERE id = ?`).get(o.orderId)).toEqual({ n: 0 });
  });

  it('the upstream dies before its local commit → check-back answers ROLLED_BACK → RolledBack; a late local transaction is refused', async () => {
    const o = options({ checkAfter: '1s' });
    const { message } = await placeOrder(kc, order, { ...o, crash: 'before-local-commit' });
    const tx = await until(o.name);
    expect(tx.status?.phase).toBe('RolledBack');
    expect(tx.status?.message).toMatch(/check-back: the source answered ROLLED_BACK/);
    expect(tx.status?.branches?.every((b) => b.attempts === 0)).toBe(true);
    // The upstream comes back and tries to finish: its local transaction cannot commit any more.
    await expect(message.runLocal(() => 1)).rejects.toBeInstanceOf(MessageRolledBack);
    expect(inventory.calls.get(message.uid)).toBeUndefined();
  });
});

describe('--message-check-timeout-action Fail', () => {
  let strictNs: string;
  let strict: OperatorProcess;
  beforeAll(async () => {
    strictNs = await freshNamespace(kc, 'msg-strict');
    strict = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [strictNs], args: ['--message-check-timeout-action', 'Fail'] });
  });
  afterAll(async () => {
    await strict?.kill();
  });

  it('an upstream that never answers CheckPrepared → Failed with no decision, nothing delivered; its decision later resumes it', async () => {
    const o = options({ checkAfter: '1s', timeout: '2s' });
    // The source's address refuses connections: every check-back fails, none answers.
    const m = orderMessage({ ...o, namespace: strictNs, endpoints: { ...o.endpoints, order: { address: '127.0.0.1:1' } } });
    const created = await txs.create({ apiVersion: 'kubetx.io/v1alpha1', kind: 'DistributedTransaction', ...m, spec: { ...m.spec, mode: 'Message' } } as DistributedTransaction);
    const failed = await txs.untilPhase(strictNs, o.name, ['Failed']);
    expect(failed.status?.decision).toBeUndefined();
    expect(failed.status?.message).toMatch(/set spec.message.decision to Commit or Rollback/);
    expect(inventory.calls.get(created.metadata.uid)).toBeUndefined();
    // A human (or the upstream, once back) decides: delivery resumes.
    await kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject(
      { group: 'kubetx.io', version: 'v1alpha1', plural: 'distributedtransactions', namespace: strictNs, name: o.name, body: { spec: { message: { decision: 'Commit' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const delivered = await txs.untilPhase(strictNs, o.name, ['Delivered']);
    expect(delivered.status?.decision).toBe('Deliver');
    expect(inventory.calls.get(created.metadata.uid)).toBe(1);
    expect(credit.calls.get(created.metadata.uid)).toBe(1);
  });
});

/**
 * TCC end to end: the operator process, the real API server, and the seed's
 * four payment services with their own SQLite ledgers. Every test checks the
 * participants' ledgers, not only the transaction's status.
 */
import * as k8s from '@kubernetes/client-node';
import { credentials, Client, Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, setFault } from '../../examples/payment/faults.js';
import { dbPathIn } from '../../examples/payment/db.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { BranchRequest, BranchResponse, TccParticipantService } from '../../src/gen/kubetx/v1/participant.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, terminal, transactions, type PaymentServices } from '../support/payment.js';

let kc: k8s.KubeConfig;
let ns: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
let nextOrder = 2000;

const until = (name: string, phases: Iterable<string> = terminal, timeoutMs?: number) => txs.untilPhase(ns, name, phases, timeoutMs);

function newOrder(): number {
  const id = nextOrder++;
  pay.addOrders([id]);
  return id;
}

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'tcc');
  txs = transactions(kc);
  pay = await startPayment();
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
});

describe('TCC payment', () => {
  it('all Trys succeed → Committed with the finalizer and two status writes, every ledger confirmed', async () => {
    const before = pay.ledgers();
    const orderId = newOrder();
    const name = `pay-${orderId}`;

    // Count every write to the object by watching it from creation on.
    const writes: string[] = [];
    const watch = await new k8s.Watch(kc).watch(
      `/apis/kubetx.io/v1alpha1/namespaces/${ns}/distributedtransactions`,
      { fieldSelector: `metadata.name=${name}` },
      (type, obj: DistributedTransaction) =>
        type === 'MODIFIED' && writes.push(obj.status?.phase ? obj.status.phase : `finalizers=${(obj.metadata.finalizers ?? []).join(',')}`),
      () => undefined,
    );
    await txs.create(payOrder(pay, { name, namespace: ns, orderId }));
    const tx = await until(name);
    watch.abort();

    expect(tx.status?.phase).toBe('Committed');
    expect(tx.status?.decision).toBe('Confirm');
    expect(tx.status?.branches?.map((b) => b.state)).toEqual(['Confirmed', 'Confirmed', 'Confirmed', 'Confirmed']);
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'True', reason: 'Committed' });
    expect(tx.status?.observedGeneration).toBe(1);
    expect(tx.status?.progress).toBe('4/4');
    // The inventory's Try returned its reservation id; it is kept for Confirm/Cancel.
    expect(tx.status?.branches?.find((b) => b.name === 'inventory')?.result).toBeTruthy();
    await eventually('all watch events', async () => (writes.includes('Committed') ? true : undefined), 5000);
    // The finalizer before the first call (a deletion mid-flight then waits for the end), the decision, the outcome.
    expect(writes).toEqual(['finalizers=kubetx.io/finalizer', 'Confirming', 'Committed']);
    // The operator's writes are its own in managedFields, and the branch list is one field there (atomic).
    const raw = (await kc.makeApiClient(k8s.CustomObjectsApi).getNamespacedCustomObject({ group: 'kubetx.io', version: 'v1alpha1', namespace: ns, plural: 'distributedtransactions', name })) as {
      metadata: { managedFields?: Array<{ manager?: string; subresource?: string; fieldsV1?: { 'f:status'?: Record<string, unknown> } }> };
    };
    const statusManager = raw.metadata.managedFields?.find((m) => m.subresource === 'status');
    expect(statusManager?.manager).toBe('kubetx-operator');
    expect(statusManager?.fieldsV1?.['f:status']?.['f:branches']).toEqual({});
    // --call-history failures (the default): calls that all succeeded leave no per-call records.
    expect(tx.status?.branches?.map((b) => b.history)).toEqual([undefined, undefined, undefined, undefined]);

    const after = pay.ledgers();
    expect(after.order!.orders[String(orderId)]!.status).toBe('PAID');
    const item = (l: typeof after) => l.inventory!.items['A-1']!;
    expect(item(after).stock).toBe(item(before).stock - 2);
    expect(item(after).frozen).toBe(item(before).frozen);
    expect(item(after).sold).toBe(item(before).sold + 2);
    expect(after.credit!.accounts['7']).toEqual({ credit: before.credit!.accounts['7']!.credit + 10, prepareAddCredit: 0 });
    expect(after.warehouse!.deliveryNotes.filter((n) => n.orderId === orderId).map((n) => n.state)).toEqual(['CREATED']);

    // Events: by default (--events warnings) a committed transaction costs no Event write; the status is
    // the audit trail. Its Decided and Committed Events were skipped, not written.
    await eventually('the skipped Events counted', async () => (counterValue(await operator.metrics(), 'kubetx_events_total', { result: 'skipped' }) >= 2 ? true : undefined), 10_000);
    const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    expect(events.items.filter((e) => e.regarding?.name === name).map((e) => e.reason)).toEqual([]);
  });

  it('one Try refused → Aborted and every ledger back to where it started', async () => {
    const before = pay.ledgers();
    const orderId = newOrder();
    const name = `pay-${orderId}`;
    await txs.create(payOrder(pay, { name, namespace: ns, orderId, qty: 1000 }));
    const tx = await until(name);

    expect(tx.status?.phase).toBe('Aborted');
    expect(tx.status?.decision).toBe('Cancel');
    expect(tx.status?.message).toMatch(/inventory.*insufficient stock/);
    expect(tx.status?.branches?.every((b) => b.state === 'Cancelled')).toBe(true);
    const after = pay.ledgers();
    expect(after.order!.orders[String(orderId)]!.status).toBe('CANCELED');
    expect(after.inventory!.items).toEqual(before.inventory!.items);
    expect(after.credit!.accounts).toEqual(before.credit!.accounts);
    expect(after.warehouse!.deliveryNotes.filter((n) => n.orderId === orderId).every((n) => n.state === 'CANCELED')).toBe(true);
  });

  it('Confirm fails 3 times then succeeds → Committed, attempts recorded', async () => {
    const orderId = newOrder();
    const name = `pay-${orderId}`;
    setFault(dbPathIn(pay.dir, 'credit'), { method: 'Confirm', mode: 'fail', remaining: 3 });
    try {
      await txs.create(payOrder(pay, { name, namespace: ns, orderId }));
      const tx = await until(name);
      expect(tx.status?.phase).toBe('Committed');
      const credit = tx.status!.branches!.find((b) => b.name === 'credit')!;
      expect(credit.state).toBe('Confirmed');
      expect(credit.attempts).toBe(4);
      // The success clears the error (the attempts and the CallFailed Events keep the history).
      expect(credit.lastError).toBeUndefined();
      expect(credit.nextAttemptTime).toBeUndefined();
      expect(tx.status!.branches!.find((b) => b.name === 'order')!.attempts).toBe(1);
      // --call-history failures (the default): credit's history starts at its first failed Confirm;
      // the branches whose calls all succeeded carry none.
      expect(credit.history?.map((h) => `${h.method}:${h.attempt}:${h.outcome}`)).toEqual(['Confirm:1:retryable', 'Confirm:2:retryable', 'Confirm:3:retryable', 'Confirm:4:ok']);
      expect(tx.status!.branches!.filter((b) => b.name !== 'credit').map((b) => b.history)).toEqual([undefined, undefined, undefined]);
      const m = await operator.metrics();
      expect(counterValue(m, 'kubetx_branch_calls_total', { method: 'Confirm', code: 'UNAVAILABLE' })).toBeGreaterThanOrEqual(3);
    } finally {
      clearFaults(dbPathIn(pay.dir, 'credit'));
    }
  });

  it('a participant down for a while → Try retried with backoff, then the transaction finishes', async () => {
    const orderId = newOrder();
    const name = `pay-${orderId}`;
    await pay.stop('warehouse');
    try {
      await txs.create(payOrder(pay, { name, namespace: ns, orderId, timeout: '60s' }));
      const waiting = await eventually('a recorded Try failure on warehouse', async () => {
        const tx = await txs.get(ns, name);
        const w = tx.status?.branches?.find((b) => b.name === 'warehouse');
        return w?.lastError && w.attempts >= 2 ? tx : undefined;
      });
      expect(waiting.status?.phase).toBe('Trying');
      expect(waiting.status?.decision).toBeUndefined();
      expect(waiting.status?.branches?.find((b) => b.name === 'warehouse')?.lastError).toMatch(/UNAVAILABLE/);
    } finally {
      await pay.restart('warehouse');
    }
    const tx = await until(name);
    expect(tx.status?.phase).toBe('Committed');
    expect(pay.ledgers().warehouse!.deliveryNotes.filter((n) => n.orderId === orderId).map((n) => n.state)).toEqual(['CREATED']);
  });

  it('a Try that hangs past the timeout → Cancel everywhere; a late Try after the Cancel is refused and reserves nothing', async () => {
    const before = pay.ledgers();
    const orderId = newOrder();
    const name = `pay-${orderId}`;
    const inventoryDb = dbPathIn(pay.dir, 'inventory');
    setFault(inventoryDb, { method: 'Try', mode: 'hang' });
    let tx: DistributedTransaction;
    try {
      await txs.create(payOrder(pay, { name, namespace: ns, orderId, timeout: '3s', callTimeout: '1s' }));
      tx = await until(name);
    } finally {
      clearFaults(inventoryDb);
    }
    expect(tx.status?.phase).toBe('Aborted');
    expect(tx.status?.message).toMatch(/timeout/);
    expect(tx.status?.branches?.every((b) => b.state === 'Cancelled')).toBe(true);

    // The network delivers the inventory's Try late, after its Cancel.
    const late = await callTry(pay.ports.inventory, {
      transactionUid: tx.metadata.uid, namespace: ns, name, branch: 'inventory', operation: 'reduceStock',
      payload: Buffer.from(JSON.stringify({ orderId, sku: 'A-1', qty: 2 })), attempt: 9, result: Buffer.alloc(0),
    });
    expect(late).toBe(GrpcStatus.ABORTED);
    const after = pay.ledgers();
    expect(after.inventory!.items).toEqual(before.inventory!.items);
    expect(after.inventory!.reservations.filter((r) => r.orderId === orderId && r.state === 'RESERVED')).toEqual([]);
    expect(after.credit!.accounts).toEqual(before.credit!.accounts);
  });

  it('operator SIGKILLed between the decision and the Confirms → restarted, it finishes with no duplicate effect', async () => {
    const before = pay.ledgers();
    const orderId = newOrder();
    const name = `pay-${orderId}`;
    // Confirms keep failing, so the operator is killed after the decision and before any Confirm succeeded.
    for (const s of ['order', 'inventory', 'credit', 'warehouse'] as const) setFault(dbPathIn(pay.dir, s), { method: 'Confirm', mode: 'fail', remaining: 1000 });
    await txs.create(payOrder(pay, { name, namespace: ns, orderId }));
    await until(name, new Set(['Confirming']));
    await operator.kill('SIGKILL');
    for (const s of ['order', 'inventory', 'credit', 'warehouse'] as const) clearFaults(dbPathIn(pay.dir, s));

    const mid = pay.ledgers();
    expect(mid.order!.orders[String(orderId)]!.status).toBe('UPDATING');
    operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
    const tx = await until(name);
    expect(tx.status?.phase).toBe('Committed');
    const after = pay.ledgers();
    expect(after.inventory!.items['A-1']!.sold).toBe(before.inventory!.items['A-1']!.sold + 2);
    expect(after.inventory!.items['A-1']!.stock).toBe(before.inventory!.items['A-1']!.stock - 2);
    expect(after.credit!.accounts['7']!.credit).toBe(before.credit!.accounts['7']!.credit + 10);
    expect(after.warehouse!.deliveryNotes.filter((n) => n.orderId === orderId).map((n) => n.state)).toEqual(['CREATED']);
    // Each Confirm's effect was applied once even though Confirm was called more than once.
    const confirms = after.credit!.barrier.filter((b) => b.uid === tx.metadata.uid && b.method === 'Confirm');
    expect(confirms).toHaveLength(1);
  });

  it('exposes metrics and probes that reflect what happened', async () => {
    expect((await fetch(`http://127.0.0.1:${operator.healthPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${operator.healthPort}/readyz`)).status).toBe(200);
    const committed = (await txs.list(ns)).filter((t) => t.status?.phase === 'Committed').length;
    const m = await operator.metrics();
    // The operator restarted in the SIGKILL test: its counters cover what it saw since.
    expect(counterValue(m, 'kubetx_transactions_total', { mode: 'TCC', result: 'Committed' })).toBeGreaterThanOrEqual(1);
    expect(counterValue(m, 'kubetx_transactions_total', { mode: 'TCC', result: 'Committed' })).toBeLessThanOrEqual(committed);
    expect(counterValue(m, 'kubetx_transaction_duration_seconds_count', { mode: 'TCC', result: 'Committed' })).toBe(
      counterValue(m, 'kubetx_transactions_total', { mode: 'TCC', result: 'Committed' }),
    );
    expect(counterValue(m, 'kubetx_branch_calls_total', { method: 'Confirm', code: 'OK' })).toBeGreaterThanOrEqual(4);
    expect(counterValue(m, 'kubetx_status_writes_total', { result: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(counterValue(m, 'kubetx_leader_election_master_status')).toBe(1);
    expect(m).toMatch(/^kubetx_workqueue_depth \d+/m);
    expect(m).toMatch(/^# TYPE kubetx_transactions_in_flight gauge/m);
  });

  it('200 transactions applied at once → all terminal, ledgers conserved', async () => {
    const before = pay.ledgers();
    const stock0 = before.inventory!.items['A-1']!;
    const credit0 = before.credit!.accounts['7']!.credit;
    const ids = Array.from({ length: 200 }, () => newOrder());
    // One unit each: the stock left decides how many can commit; the rest are refused.
    await Promise.all(ids.map((orderId) => txs.create(payOrder(pay, { name: `bulk-${orderId}`, namespace: ns, orderId, qty: 1, timeout: '120s' }))));
    const done = await eventually('200 transactions terminal', async () => {
      const all = (await txs.list(ns)).filter((t) => t.metadata.name.startsWith('bulk-'));
      return all.length === 200 && all.every((t) => terminal.has(t.status?.phase ?? '')) ? all : undefined;
    }, 240_000);
    const committed = done.filter((t) => t.status?.phase === 'Committed').length;
    const aborted = done.filter((t) => t.status?.phase === 'Aborted').length;
    expect(committed + aborted).toBe(200);
    expect(committed).toBe(Math.min(200, stock0.stock));

    const after = pay.ledgers();
    const item = after.inventory!.items['A-1']!;
    expect(item.stock + item.frozen + item.sold).toBe(stock0.stock + stock0.frozen + stock0.sold);
    expect(item.frozen).toBe(0);
    expect(item.sold - stock0.sold).toBe(committed);
    expect(after.credit!.accounts['7']).toEqual({ credit: credit0 + 10 * committed, prepareAddCredit: 0 });
    const statuses = ids.map((id) => after.order!.orders[String(id)]!.status);
    expect(statuses.filter((s) => s === 'PAID')).toHaveLength(committed);
    expect(statuses.filter((s) => s === 'CANCELED')).toHaveLength(aborted);
    process.stderr.write(`[tcc] 200 at once: ${committed} committed, ${aborted} aborted\n`);
  }, 300_000);
});

function callTry(port: number, req: BranchRequest): Promise<number> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      TccParticipantService.try.path,
      (v: BranchRequest) => Buffer.from(BranchRequest.encode(v).finish()),
      (b: Buffer) => BranchResponse.decode(b),
      req,
      new Metadata(),
      { deadline: new Date(Date.now() + 5000) },
      (err) => {
        client.close();
        resolve(err ? err.code : GrpcStatus.OK);
      },
    );
  });
}

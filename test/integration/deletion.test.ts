/**
 * Deleting a running transaction does not lose it (src/controller/deletion.ts):
 * the kubetx.io/finalizer holds the object until the transaction has finished —
 * carrying out a persisted decision, or deciding Cancel first when there was
 * none — then the operator removes it and records the final status. The
 * kubetx.io/force-delete annotation removes it at once.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, setFault } from '../../examples/payment/faults.js';
import { dbPathIn, SERVICES } from '../../examples/payment/db.js';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';

let kc: k8s.KubeConfig;
let ns: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
let api: k8s.CustomObjectsApi;
let nextOrder = 9100;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'deletion');
  txs = transactions(kc);
  api = kc.makeApiClient(k8s.CustomObjectsApi);
  pay = await startPayment();
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterEach(() => {
  for (const s of SERVICES) clearFaults(dbPathIn(pay.dir, s));
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
});

const remove = (name: string) => api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name });
const gone = (name: string) =>
  eventually(`${name} removed`, async () => {
    try {
      await txs.get(ns, name);
      return undefined;
    } catch (err) {
      return (err as { code?: number }).code === 404 ? true : undefined;
    }
  }, 30_000);
const eventFor = (name: string, reason: string) =>
  eventually(`${reason} Event of ${name}`, async () =>
    (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items.find((e) => e.regarding?.name === name && e.reason === reason),
  );

function newPayment(name: string): DistributedTransaction {
  const orderId = nextOrder++;
  pay.addOrders([orderId]);
  return payOrder(pay, { name, namespace: ns, orderId, retry: { initialInterval: '100ms', maxInterval: '200ms' } });
}

describe('deleting a transaction that has not finished', () => {
  it('Confirming: the deletion waits, the Confirms are carried out, then the object goes with a final record', async () => {
    setFault(dbPathIn(pay.dir, 'credit'), { method: 'Confirm', mode: 'fail', remaining: 1000 });
    const tx0 = newPayment('del-confirming');
    const orderId = (tx0.spec.branches[0]!.payload as { orderId: number }).orderId;
    await txs.create(tx0);
    await txs.untilPhase(ns, 'del-confirming', ['Confirming']);
    await remove('del-confirming');

    // Before: the object vanished here, the order stayed PAID-pending and the credit prepared forever.
    const held = await txs.get(ns, 'del-confirming');
    expect(held.metadata.deletionTimestamp).toBeTruthy();
    expect(held.metadata.finalizers).toContain('kubetx.io/finalizer');

    clearFaults(dbPathIn(pay.dir, 'credit'));
    await gone('del-confirming');
    const l = pay.ledgers();
    expect(l.order!.orders[String(orderId)]!.status).toBe('PAID');
    expect(Object.values(l.credit!.accounts).every((a) => a.prepareAddCredit === 0)).toBe(true);
    const ev = await eventFor('del-confirming', 'Deleted');
    expect(ev.note).toMatch(/phase Committed, decision Confirm; order Confirmed, inventory Confirmed, credit Confirmed, warehouse Confirmed/);
    expect(operator.lines.some((x) => x.msg === 'deleted transaction released' && x.transaction === 'del-confirming' && x.phase === 'Committed')).toBe(true);
  });

  it('undecided (a Try hangs): the deletion decides Cancel, every branch is cancelled, then the object goes', async () => {
    setFault(dbPathIn(pay.dir, 'inventory'), { method: 'Try', mode: 'hang' });
    const tx0 = newPayment('del-trying');
    tx0.spec.timeout = '10m';
    const orderId = (tx0.spec.branches[0]!.payload as { orderId: number }).orderId;
    const frozenBefore = pay.ledgers().inventory!.items['A-1']!.frozen;
    await txs.create(tx0);
    await txs.untilPhase(ns, 'del-trying', ['Trying']);
    await remove('del-trying');
    await gone('del-trying');
    const ev = await eventFor('del-trying', 'Deleted');
    expect(ev.note).toMatch(/phase Aborted, decision Cancel/);
    const l = pay.ledgers();
    expect(l.order!.orders[String(orderId)]!.status).not.toBe('PAID');
    expect(l.inventory!.items['A-1']!.frozen).toBe(frozenBefore);
  });

  it('kubetx.io/force-delete: "true" removes it at once, with a Warning', async () => {
    setFault(dbPathIn(pay.dir, 'credit'), { method: 'Confirm', mode: 'fail', remaining: 1000 });
    await txs.create(newPayment('del-forced'));
    await txs.untilPhase(ns, 'del-forced', ['Confirming']);
    await remove('del-forced');
    expect((await txs.get(ns, 'del-forced')).metadata.deletionTimestamp).toBeTruthy();
    await txs.patchAnnotations(ns, 'del-forced', { 'kubetx.io/force-delete': 'true' });
    await gone('del-forced');
    const ev = await eventFor('del-forced', 'ForcedDeletion');
    expect(ev.type).toBe('Warning');
    expect(ev.note).toMatch(/phase Confirming, decision Confirm/);
  });

  it('a finished transaction is removed at once', async () => {
    await txs.create(newPayment('del-finished'));
    await txs.untilPhase(ns, 'del-finished', ['Committed']);
    await remove('del-finished');
    await gone('del-finished');
  });
});

/**
 * The endpoint policy: with the defaults, a transaction naming a raw address or
 * a Service in another namespace is refused by the operator before any call —
 * phase Failed, condition Succeeded=False/InvalidEndpoint, a Warning Event
 * naming the field — and no participant is called.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, terminal, transactions, type PaymentServices } from '../support/payment.js';

let kc: k8s.KubeConfig;
let ns: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'policy');
  txs = transactions(kc);
  pay = await startPayment();
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], allowRawAddresses: false });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
});

async function failedWith(name: string) {
  return eventually(`${name} to be refused`, async () => {
    const tx = await txs.get(ns, name);
    return terminal.has(tx.status?.phase ?? '') ? tx : undefined;
  });
}

describe('endpoint policy (operator defaults)', () => {
  it('refuses raw addresses without calling anyone', async () => {
    const before = pay.ledgers();
    await txs.create(payOrder(pay, { name: 'raw-address', namespace: ns, orderId: 1003 }));
    const tx = await failedWith('raw-address');
    expect(tx.status?.phase).toBe('Failed');
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidEndpoint' });
    expect(tx.status?.message).toMatch(/spec\.branches\[0\]\.endpoint\.address: raw addresses are not allowed/);
    expect(pay.ledgers()).toEqual(before);
    const event = await eventually('the InvalidEndpoint event', async () =>
      (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items.find(
        (e) => e.regarding?.name === 'raw-address' && e.reason === 'InvalidEndpoint',
      ),
    );
    expect(event.type).toBe('Warning');
    expect(event.note).toMatch(/spec\.branches\[0\]\.endpoint\.address/);
  });

  it('refuses a Service in another namespace', async () => {
    const tx0 = payOrder(pay, { name: 'cross-ns', namespace: ns, orderId: 1004 });
    tx0.spec.branches = tx0.spec.branches.map((b) => ({ ...b, endpoint: { service: { name: b.name, port: 50051, namespace: 'payments' } } }));
    await txs.create(tx0);
    const tx = await failedWith('cross-ns');
    expect(tx.status?.phase).toBe('Failed');
    expect(tx.status?.message).toMatch(/spec\.branches\[0\]\.endpoint\.service\.namespace: Service in namespace "payments" is not allowed/);
  });

  it('refuses a branch payload over 64 KiB (CEL cannot measure it) without calling anyone', async () => {
    const before = pay.ledgers();
    const tx0 = payOrder(pay, { name: 'big-payload', namespace: ns, orderId: 1005 });
    tx0.spec.branches = tx0.spec.branches.map((b) => ({ ...b, endpoint: { service: { name: b.name, port: 50051 } } }));
    tx0.spec.branches[2]!.payload = { orderId: 1005, blob: 'x'.repeat(70 * 1024) };
    await txs.create(tx0);
    const tx = await failedWith('big-payload');
    expect(tx.status?.phase).toBe('Failed');
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'PayloadTooLarge' });
    expect(tx.status?.message).toMatch(/spec\.branches\[2\]\.payload: \d+ bytes of JSON, more than the 65536 allowed/);
    expect(pay.ledgers()).toEqual(before);
  });
});

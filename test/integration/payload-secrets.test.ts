/**
 * payloadFrom.secretKeyRef: a card number travels from a labelled Secret to
 * the participant at call time and appears nowhere else — not in the
 * transaction, its Events, or the operator's logs. An unlabelled Secret and a
 * missing one give the same message (no existence oracle), without the value.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';
import { refusal } from '../support/refusal.js';

const CARD = '4111111111111111';
let kc: k8s.KubeConfig;
let ns: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'payload-secret');
  txs = transactions(kc);
  pay = await startPayment();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const data = (orderId: number) => ({ order: Buffer.from(JSON.stringify({ orderId, card: CARD })).toString('base64') });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'card-6201', labels: { 'kubetx.io/payload': 'true' } }, data: data(6201) } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'unlabelled' }, data: data(6202) } });
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--read-payload-secrets'] });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
});

function withSecretPayload(name: string, orderId: number, secret: string) {
  const tx = payOrder(pay, { name, namespace: ns, orderId, timeout: '5s' });
  const { payload: _inline, ...order } = tx.spec.branches[0]!;
  tx.spec.branches[0] = { ...order, payloadFrom: { secretKeyRef: { name: secret, key: 'order' } } };
  return tx;
}

describe('payloadFrom.secretKeyRef', () => {
  it('the participant gets the Secret\'s payload; the value is nowhere in the object, its Events or the logs', async () => {
    pay.addOrders([6201]);
    await txs.create(withSecretPayload('paid-by-card', 6201, 'card-6201'));
    const tx = await txs.untilPhase(ns, 'paid-by-card', ['Committed', 'Aborted', 'Failed']);
    expect(tx.status?.phase).toBe('Committed');
    expect(pay.ledgers().order!.orders['6201']!.status).toBe('PAID');
    expect(JSON.stringify(tx)).not.toContain(CARD);
    const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    expect(JSON.stringify(events.items)).not.toContain(CARD);
    expect(JSON.stringify(operator.lines)).not.toContain(CARD);
  });

  it('an unlabelled Secret and a missing one: the same message, without the value', async () => {
    pay.addOrders([6202, 6203]);
    await txs.create(withSecretPayload('unlabelled-secret', 6202, 'unlabelled'));
    await txs.create(withSecretPayload('missing-secret', 6203, 'missing'));
    const lastError = (name: string) => eventually(`${name} lastError`, async () => (await txs.get(ns, name)).status?.branches?.[0]?.lastError);
    const a = await lastError('unlabelled-secret');
    const b = await lastError('missing-secret');
    expect(a.replace('"unlabelled"', '"X"')).toBe(b.replace('"missing"', '"X"'));
    expect(a).toMatch(/carry the label kubetx\.io\/payload=true/);
    expect(a).not.toContain(CARD);
  });

  it('the API server refuses payload and payloadFrom together, naming the field', async () => {
    const tx = withSecretPayload('both', 6204, 'card-6201');
    tx.spec.branches[0]!.payload = { orderId: 6204 };
    const r = await refusal(txs.create(tx));
    expect(r.code).toBe(422);
    expect(r.message).toMatch(/spec\.branches\[0\]\.payloadFrom: .*set payload or payloadFrom, not both/);
  });
});

/**
 * Timers longer than Node's 24.8-day limit (issue: `ttlAfterFinished: 720h`
 * made a finished object reconcile hundreds of times a second, because
 * setTimeout fires after 1 ms when given more than 2³¹−1 ms). With a 720 h TTL
 * on the object, a 720 h operator default and a 1000 h resync period, a
 * finished transaction is reconciled a bounded number of times while another
 * transaction makes progress, and Node never warns of a timeout overflow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';

let ns: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;

beforeAll(async () => {
  const kc = kubeConfig();
  ns = await freshNamespace(kc, 'timers');
  txs = transactions(kc);
  pay = await startPayment();
  operator = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespaces: [ns],
    args: ['--default-ttl-after-finished', '720h', '--resync-period', '1000h'],
  });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
});

describe('timers over 24.8 days', () => {
  it('a finished transaction with ttlAfterFinished 720h is not reconciled in a loop', async () => {
    pay.addOrders([8101, 8102, 8103]);
    const first = payOrder(pay, { name: 'ttl-720h', namespace: ns, orderId: 8101 });
    first.spec.ttlAfterFinished = '720h';
    await txs.create(first);
    expect((await txs.untilPhase(ns, 'ttl-720h', ['Committed', 'Aborted', 'Failed'])).status?.phase).toBe('Committed');
    // The operator's own default (720h) applies to a transaction without a TTL.
    await txs.create(payOrder(pay, { name: 'default-ttl', namespace: ns, orderId: 8102 }));
    expect((await txs.untilPhase(ns, 'default-ttl', ['Committed', 'Aborted', 'Failed'])).status?.phase).toBe('Committed');
    const before = counterValue(await operator.metrics(), 'kubetx_reconcile_total');

    // Progress, not a sleep, marks the window: a third transaction runs to its end meanwhile.
    await txs.create(payOrder(pay, { name: 'progress', namespace: ns, orderId: 8103 }));
    await txs.untilPhase(ns, 'progress', ['Committed', 'Aborted', 'Failed']);
    const after = counterValue(await operator.metrics(), 'kubetx_reconcile_total');
    console.log(`[long-timers] reconciles while a third transaction ran: ${after - before}`);

    // The third transaction needs a handful of reconciles (create, calls ended twice, its own status
    // writes seen by the watch); the two finished ones, none. A 1 ms timer loop would add hundreds.
    expect(after - before).toBeLessThanOrEqual(12);
    expect(operator.stderr()).not.toMatch(/TimeoutOverflowWarning/);
    expect((await txs.get(ns, 'ttl-720h')).status?.phase).toBe('Committed');
  });
});

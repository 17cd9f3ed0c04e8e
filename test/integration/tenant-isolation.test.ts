/**
 * "A slow participant only delays its own transactions" (docs/participants.md),
 * tested literally against a hostile tenant: its participant accepts every call
 * and never answers, its branches ask for a one-hour callTimeout, and it has
 * more transactions than the operator has workers. Another tenant's
 * transactions must still commit, the hostile calls must be capped at
 * --max-call-timeout, and deleting the hostile transactions must cancel their
 * calls at once.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startHangingParticipant, startMadeUpCodeParticipant, type HangingParticipant } from '../support/hanging-participant.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';

const WORKERS = 4;
const HOSTILE = WORKERS * 2;
const MAX_CALL_TIMEOUT_S = 30;

let kc: k8s.KubeConfig;
let hostileNs: string;
let victimNs: string;
let pay: PaymentServices;
let hang: HangingParticipant;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;

function hostileTx(name: string): DistributedTransaction {
  const endpoint = { address: `127.0.0.1:${hang.port}` };
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: hostileNs } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '1h',
      branches: [
        { name: 'a', endpoint, callTimeout: '1h' },
        { name: 'b', endpoint, callTimeout: '1h' },
      ],
    },
  };
}

beforeAll(async () => {
  kc = kubeConfig();
  hostileNs = await freshNamespace(kc, 'hostile');
  victimNs = await freshNamespace(kc, 'victim');
  txs = transactions(kc);
  pay = await startPayment();
  hang = await startHangingParticipant();
  operator = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespaces: [hostileNs, victimNs],
    args: ['--workers', String(WORKERS), '--max-call-timeout', `${MAX_CALL_TIMEOUT_S}s`],
  });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
  await hang?.stop();
});

describe('one tenant cannot stall another', () => {
  it('participants that never answer, more transactions than workers: the other tenant still commits', async () => {
    for (let i = 0; i < HOSTILE; i++) await txs.create(hostileTx(`hang-${i}`));
    // At least as many hostile transactions as workers have their Trys held open (an operator whose
    // workers wait for participants is now stuck; one whose calls run apart holds all of them).
    await eventually(`${WORKERS * 2} held Try calls`, async () => (hang.open().length >= WORKERS * 2 ? true : undefined));

    pay.addOrders([7001, 7002, 7003]);
    for (const id of [7001, 7002, 7003]) await txs.create(payOrder(pay, { name: `pay-${id}`, namespace: victimNs, orderId: id }));
    for (const id of [7001, 7002, 7003]) {
      const tx = await txs.untilPhase(victimNs, `pay-${id}`, ['Committed', 'Aborted', 'Failed'], 60_000);
      expect(tx.status?.phase).toBe('Committed');
    }
    // The hostile calls were still being held while the victim committed: nothing timed out to make room.
    expect(hang.open().length).toBeGreaterThanOrEqual(HOSTILE * 2);
    const orders = pay.ledgers().order!.orders;
    expect([7001, 7002, 7003].map((id) => orders[String(id)]?.status)).toEqual(['PAID', 'PAID', 'PAID']);
  });

  it("caps a branch's one-hour callTimeout at --max-call-timeout (the deadline the participant sees)", () => {
    expect(hang.calls.length).toBeGreaterThan(0);
    for (const c of hang.calls) {
      // 1 s of slack for the clock reads on both sides.
      expect(c.deadline - c.receivedAt).toBeLessThanOrEqual(MAX_CALL_TIMEOUT_S * 1000 + 1000);
    }
  });

  it('deleting the hostile transactions cancels their calls at once', async () => {
    const api = kc.makeApiClient(k8s.CustomObjectsApi);
    const held = hang.open();
    expect(held.length).toBeGreaterThan(0);
    for (let i = 0; i < HOSTILE; i++) {
      await api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: hostileNs, name: `hang-${i}` });
    }
    // Well before any deadline (30 s) the participant sees every call cancelled by the operator.
    await eventually('every held call cancelled', async () => (held.every((c) => c.cancelled) ? true : undefined), 20_000);
    // Cancelled by the operator, not by their deadline running out.
    for (const c of held) expect(c.cancelledAt!).toBeLessThan(c.deadline - 1000);
  });

  it('/healthz stays healthy and the operator logged no reconcile error', async () => {
    const res = await fetch(`http://127.0.0.1:${operator.healthPort}/healthz`);
    expect(res.status).toBe(200);
    expect(operator.lines.filter((l) => l.msg === 'reconcile failed, will retry')).toEqual([]);
  });
});

describe('a participant cannot grow the operator\'s metrics', () => {
  it('made-up gRPC status codes all count under one code label', async () => {
    const madeUp = await startMadeUpCodeParticipant();
    try {
      await txs.create({
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'DistributedTransaction',
        metadata: { name: 'made-up-codes', namespace: victimNs } as DistributedTransaction['metadata'],
        spec: {
          mode: 'TCC',
          timeout: '5m',
          retry: { initialInterval: '100ms', maxInterval: '100ms' },
          branches: [{ name: 'a', endpoint: { address: `127.0.0.1:${madeUp.port}` } }],
        },
      });
      await eventually('40 distinct made-up codes answered', async () => (madeUp.answered() >= 40 ? true : undefined));
      const text = await operator.metrics();
      const codes = new Set(
        text
          .split('\n')
          .filter((l) => l.startsWith('kubetx_branch_calls_total{'))
          .map((l) => /code="([^"]*)"/.exec(l)?.[1]),
      );
      // Before: one series per code the participant invented (40 here). After: the closed set.
      expect([...codes].filter((c) => c?.startsWith('CODE_'))).toEqual([]);
      expect(codes.has('UNKNOWN_CODE')).toBe(true);
      expect(counterValue(text, 'kubetx_branch_calls_total', { code: 'UNKNOWN_CODE' })).toBeGreaterThanOrEqual(40);
    } finally {
      await madeUp.stop();
    }
  });
});

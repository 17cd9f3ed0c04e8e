/**
 * Best-effort notifications end to end: the operator process, the real API
 * server and in-process merchant receivers (examples/notify/merchant.ts).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMerchant, type Merchant } from '../../examples/notify/merchant.js';
import type { BranchSpec, DistributedTransaction, NotifySpec } from '../../src/api/types.js';
import { GROUP, VERSION } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

const terminal = new Set(['Delivered', 'Exhausted', 'Failed']);
const logger = pino({ level: process.env.KUBETX_TEST_PARTICIPANT_LOGS ? 'info' : 'silent' });

let kc: k8s.KubeConfig;
let ns: string;
let dir: string;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
const merchants: Merchant[] = [];

async function merchant(opts: { port?: number; alwaysFail?: boolean; db?: string } = {}): Promise<Merchant> {
  const m = await startMerchant({
    dbPath: opts.db ?? join(dir, `merchant-${merchants.length}.db`),
    address: `127.0.0.1:${opts.port ?? 0}`,
    logger,
    alwaysFail: opts.alwaysFail ?? false,
  });
  merchants.push(m);
  return m;
}

function notification(name: string, branches: Array<{ name: string; port: number }>, notify: NotifySpec): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'Notify',
      payload: { orderId: 1001, result: 'PAID' },
      branches: branches.map((b): BranchSpec => ({ name: b.name, endpoint: { address: `127.0.0.1:${b.port}` }, operation: 'paymentResult', callTimeout: '2s' })),
      notify,
    },
  };
}

const until = (name: string, timeoutMs?: number) => txs.untilPhase(ns, name, terminal, timeoutMs);

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'notify');
  txs = transactions(kc);
  dir = mkdtempSync(join(tmpdir(), 'kubetx-notify-'));
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill();
  await Promise.all(merchants.map((m) => m.stop().catch(() => undefined)));
});

describe('Notify', () => {
  it('a merchant offline for a while → retried on the schedule → Delivered once it is back, recorded once', async () => {
    // Reserve a port, then take the merchant offline.
    const first = await merchant();
    const port = first.port;
    const db = join(dir, 'offline-merchant.db');
    await first.stop();
    const name = 'notify-offline';
    await txs.create(notification(name, [{ name: 'merchant', port }], { schedule: ['1s', '2s'], maxAttempts: 50 }));

    const waiting = await eventually('three failed attempts', async () => {
      const tx = await txs.get(ns, name);
      const b = tx.status?.branches?.[0];
      // A status written after a failure (not the one persisted before a round of calls, which has no nextAttemptTime yet).
      return b && b.attempts >= 3 && b.lastError && b.nextAttemptTime ? tx : undefined;
    });
    expect(waiting.status?.phase).toBe('Notifying');
    const b = waiting.status!.branches![0]!;
    expect(b.state).toBe('Delivering');
    expect(b.lastError).toMatch(/UNAVAILABLE/);
    // The schedule: attempts 1, +1s, +2s, +2s…: never sooner than the interval after the failure.
    expect(Date.parse(b.nextAttemptTime!) - Date.parse(b.lastAttemptTime!)).toBeGreaterThanOrEqual(2000);

    const back = await merchant({ port, db });
    const tx = await until(name);
    expect(tx.status?.phase).toBe('Delivered');
    expect(tx.status?.progress).toBe('1/1');
    expect(tx.status?.completionTime).toBeTruthy();
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'True', reason: 'Delivered' });
    const branch = tx.status!.branches![0]!;
    expect(branch.state).toBe('Delivered');
    expect(branch.attempts).toBeGreaterThanOrEqual(4);
    expect(back.received(tx.metadata.uid)).toBe(1);
  });

  it('the cap is reached → Exhausted; the object stays readable with every branch outcome', async () => {
    const broken = await merchant({ alwaysFail: true });
    const fine = await merchant();
    const name = 'notify-exhausted';
    await txs.create(
      notification(name, [{ name: 'broken', port: broken.port }, { name: 'fine', port: fine.port }], { schedule: ['1s'], maxAttempts: 3 }),
    );
    await until(name);
    // The receiver (or anyone) looks the result up later: the object is still there.
    const tx = await txs.get(ns, name);
    expect(tx.status?.phase).toBe('Exhausted');
    expect(tx.status?.message).toBe('not delivered to broken after 3 attempts each; delivered to 1 of 2');
    expect(tx.status?.progress).toBe('1/2');
    expect(tx.status?.completionTime).toBeTruthy();
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'Exhausted' });
    expect(tx.status?.branches?.map((b) => [b.name, b.state, b.attempts])).toEqual([
      ['broken', 'Exhausted', 3],
      ['fine', 'Delivered', 1],
    ]);
    expect(tx.status?.branches?.[0]?.lastError).toMatch(/merchant endpoint broken/);
    expect(broken.calls()).toBe(3);
    expect(fine.received(tx.metadata.uid)).toBe(1);

    const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    const reasons = events.items.filter((e) => e.regarding?.name === name).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['NotifyExhausted', 'Exhausted']));
    // Nothing more is sent after the end.
    await new Promise((r) => setTimeout(r, 500));
    expect(broken.calls()).toBe(3);
  });
});

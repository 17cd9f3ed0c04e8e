/**
 * Event amplification: one 64-branch transaction against a participant that
 * refuses every connection made one Event PATCH per failed call (2,951
 * PATCHes against 101 status writes in the reviewer's run). Now repeats are
 * counted in memory and written as one series PATCH per flush interval, under
 * a per-object token bucket; a series is kept per failing branch and method
 * (its note names the branch), and its count still tells how often it
 * happened once the operator has flushed (on SIGTERM).
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'events');
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill('SIGKILL');
});

const longName = `t${'x'.repeat(250)}`.slice(0, 253);

describe('Events per transaction are bounded', () => {
  it('64 branches failing again and again: a handful of Event writes, the count kept in the series', async () => {
    const txs = transactions(kc);
    const endpoint = { address: '127.0.0.1:1' };
    await txs.create({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DistributedTransaction',
      metadata: { name: 'many-failures', namespace: ns } as DistributedTransaction['metadata'],
      spec: {
        mode: 'TCC',
        timeout: '1h',
        retry: { initialInterval: '100ms', maxInterval: '200ms' },
        branches: Array.from({ length: 64 }, (_, i) => ({ name: `b${i}`, endpoint })),
      },
    });
    // Progress, not time: wait for many failed calls.
    await eventually('640 failed calls', async () => {
      const text = await operator.metrics();
      return counterValue(text, 'kubetx_branch_calls_total', { method: 'Try' }) >= 640 ? text : undefined;
    }, 90_000);
    const text = await operator.metrics();
    const written = counterValue(text, 'kubetx_events_total', { result: 'created' }) + counterValue(text, 'kubetx_events_total', { result: 'patched' });
    const coalesced = counterValue(text, 'kubetx_events_total', { result: 'coalesced' });
    const dropped = counterValue(text, 'kubetx_events_total', { result: 'dropped' });
    console.log(`[events] ${written} Event API writes, ${coalesced} occurrences coalesced, ${dropped} dropped by the per-object limit`);
    // Before: one PATCH per failed call (≥ 640 here). Now a series per failing branch, and never more
    // Event writes for one object than its token bucket's burst (25) allows.
    expect(written).toBeLessThanOrEqual(25);
    // Most of the 640 failures are accounted for (those of the latest steps wait for their status write).
    expect(coalesced + dropped).toBeGreaterThanOrEqual(500);
    // 64 calls per batch share one abort signal: no MaxListenersExceededWarning (a stack trace per batch on stderr).
    expect(operator.stderr()).not.toMatch(/Warning/);

    // On SIGTERM the pending counts are flushed: each Event names one branch and says how often it failed.
    await operator.kill('SIGTERM');
    const evs = (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.regarding?.name === 'many-failures' && e.reason === 'CallFailed',
    );
    const branches = evs.map((e) => /^branch (b\d+): Try failed: /.exec(e.note ?? '')?.[1]);
    expect(branches.every((b) => b !== undefined)).toBe(true);
    expect(new Set(branches).size).toBe(evs.length);
    const counted = evs.reduce((n, e) => n + (e.series?.count ?? 1), 0);
    expect(counted).toBeGreaterThanOrEqual(coalesced);
    operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
  });

  it('a transaction with a 253-character name gets its Events (the Event name stays a valid 253-character name)', async () => {
    const txs = transactions(kc);
    await txs.create({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DistributedTransaction',
      metadata: { name: longName, namespace: ns } as DistributedTransaction['metadata'],
      spec: { mode: 'TCC', timeout: '1s', branches: [{ name: 'a', endpoint: { address: '127.0.0.1:1' } }] },
    });
    const ev = await eventually('an Event for the long-named transaction', async () =>
      (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items.find((e) => e.regarding?.name === longName),
    );
    expect(ev.metadata?.name?.length).toBeLessThanOrEqual(253);
    expect(operator.lines.filter((l) => l.msg === 'could not record event')).toEqual([]);
  });
});

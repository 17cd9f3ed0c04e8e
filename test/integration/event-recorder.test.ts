/**
 * The EventRecorder against the real API server (in process, with short
 * intervals): a series whose Event disappeared (its TTL passed, or someone
 * deleted it) is created anew with the count so far instead of failing with
 * 404 on every flush ("could not record event … 404 … not found", 0–5 per
 * 100 transactions under load), and Event writes the API server refuses are
 * counted.
 */
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { EventRecorder, type EventResult } from '../../src/controller/events.js';
import { eventually, freshNamespace, kubeConfig } from '../support/env.js';

let kc: k8s.KubeConfig;
let ns: string;
let api: k8s.EventsV1Api;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'recorder');
  api = kc.makeApiClient(k8s.EventsV1Api);
});

function regarding(name: string, namespace = ns): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace, uid: `00000000-0000-4000-8000-${String(name.length).padStart(12, '0')}` },
    spec: { mode: 'TCC', branches: [] },
  } as unknown as DistributedTransaction;
}

const listFor = async (name: string) => (await api.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.regarding?.name === name);

describe('EventRecorder on the real API server', () => {
  it('a series whose Event was deleted is created anew with its count, not lost to 404s', async () => {
    const results: EventResult[] = [];
    const rec = new EventRecorder(kc, pino({ level: 'silent' }), 'test', Date.now, { flushMs: 50, onResult: (r) => results.push(r) });
    const tx = regarding('gone-event');
    const intent = { type: 'Warning' as const, reason: 'CallFailed', message: 'branch a: Confirm failed: UNAVAILABLE: down', branch: 'a', method: 'Confirm' as const };
    rec.record(tx, intent);
    const [first] = await eventually('the first Event', async () => ((await listFor('gone-event')).length === 1 ? listFor('gone-event') : undefined));
    await api.deleteNamespacedEvent({ name: first!.metadata!.name!, namespace: ns });

    rec.record(tx, intent);
    rec.record(tx, intent);
    const again = await eventually('a new Event carrying the series', async () => {
      const evs = await listFor('gone-event');
      return evs.length === 1 && evs[0]!.metadata!.name !== first!.metadata!.name && evs[0]!.series?.count === 3 ? evs[0] : undefined;
    });
    expect(again.series?.count).toBe(3);
    expect(again.note).toBe(intent.message);
    expect(results.filter((r) => r === 'created')).toHaveLength(2);
    expect(results).not.toContain('failed');
  });

  it('a note that changes starts a new Event; the old series keeps its count', async () => {
    const rec = new EventRecorder(kc, pino({ level: 'silent' }), 'test', Date.now, { flushMs: 50 });
    const tx = regarding('changing-note');
    const base = { type: 'Warning' as const, reason: 'CallFailed', branch: 'b', method: 'Cancel' as const };
    rec.record(tx, { ...base, message: 'branch b: Cancel failed: UNAVAILABLE: down' });
    await eventually('the first Event', async () => ((await listFor('changing-note')).length === 1 ? true : undefined));
    rec.record(tx, { ...base, message: 'branch b: Cancel failed: UNAVAILABLE: down' });
    rec.record(tx, { ...base, message: 'branch b: Cancel failed: RESOURCE_EXHAUSTED: disk full' });
    const evs = await eventually('two Events, the first with count 2', async () => {
      const e = await listFor('changing-note');
      return e.length === 2 && e.some((x) => x.series?.count === 2) ? e : undefined;
    });
    expect(evs.map((e) => [e.note, e.series?.count ?? 1]).sort()).toEqual([
      ['branch b: Cancel failed: RESOURCE_EXHAUSTED: disk full', 1],
      ['branch b: Cancel failed: UNAVAILABLE: down', 2],
    ]);
  });

  it('an Event the API server refuses is counted as failed', async () => {
    const results: EventResult[] = [];
    const rec = new EventRecorder(kc, pino({ level: 'silent' }), 'test', Date.now, { onResult: (r) => results.push(r) });
    // A namespace that does not exist: the create is refused.
    rec.record(regarding('nowhere', 'no-such-namespace-kubetx'), { type: 'Normal', reason: 'Decided', message: 'Confirm: all prepared' });
    await eventually('the failure counted', async () => (results.includes('failed') ? true : undefined), 15_000);
  });
});

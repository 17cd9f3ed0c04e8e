import { describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { KEEP_PAYLOAD_BYTES, jsonDepth, payloadSummary, payloadsStripped, slimForCache } from '../../src/controller/cache-transform.js';
import { findSpecViolation } from '../../src/controller/spec-checks.js';
import { defaultEndpointPolicy } from '../../src/participants/endpoint.js';

const policy = { ...defaultEndpointPolicy, allowRawAddresses: true };

function tx(payloads: unknown[], extra: Record<string, unknown> = {}): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: {
      name: 't', namespace: 'n', uid: 'u',
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"copy"}', keep: 'me' },
      managedFields: [{ manager: 'kubectl' }],
    } as unknown as DistributedTransaction['metadata'],
    spec: { mode: 'TCC', branches: payloads.map((payload, i) => ({ name: `b${i}`, endpoint: { address: '10.0.0.1:1' }, payload })), ...extra },
  } as DistributedTransaction;
}

/** {"a":{"a":…}} nested n levels, built without recursion. */
function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

describe('slimForCache', () => {
  it('drops managedFields and the last-applied copy, keeps other annotations and small payloads', () => {
    const t = slimForCache(tx([{ orderId: 1 }]));
    expect((t.metadata as unknown as Record<string, unknown>).managedFields).toBeUndefined();
    expect(t.metadata.annotations).toEqual({ keep: 'me' });
    expect(t.spec.branches[0]!.payload).toEqual({ orderId: 1 });
    expect(payloadsStripped(t)).toBe(false);
  });

  it('drops payloads over the threshold but keeps what the spec checks need', () => {
    const big = 'x'.repeat(KEEP_PAYLOAD_BYTES);
    const t = slimForCache(tx([{ big }, { small: 1 }], { payload: { top: true } }));
    expect(payloadsStripped(t)).toBe(true);
    expect(t.spec.payload).toBeUndefined();
    expect(t.spec.branches.map((b) => b.payload)).toEqual([undefined, undefined]);
    const s = payloadSummary(t);
    expect(s.fields.map((f) => f.field)).toEqual(['spec.payload', 'spec.branches[0].payload', 'spec.branches[1].payload']);
    expect(s.totalBytes).toBe(JSON.stringify({ top: true }).length + JSON.stringify({ big }).length + JSON.stringify({ small: 1 }).length);
    // A shallow copy (as the reconciler makes) keeps the summary: it lives on the spec object.
    expect(payloadSummary({ ...t, metadata: { ...t.metadata } }).stripped).toBe(true);
  });

  it('a payload nested 5,000 levels: measured without recursion, stripped, refused as PayloadTooDeep', () => {
    expect(jsonDepth(deep(5000))).toBe(5000);
    const t = slimForCache(tx([deep(5000)]));
    expect(payloadsStripped(t)).toBe(true);
    expect(findSpecViolation(t, policy)).toMatchObject({ reason: 'PayloadTooDeep', field: 'spec.branches[0].payload' });
    // 32 levels are fine.
    expect(findSpecViolation(slimForCache(tx([deep(31)])), policy)).toBeUndefined();
  });

  it('refuses all payloads together over 256 KiB, naming the bound', () => {
    const chunk = 'y'.repeat(60 * 1024);
    const v = findSpecViolation(slimForCache(tx([{ chunk }, { chunk }, { chunk }, { chunk }, { chunk }])), policy);
    expect(v).toMatchObject({ reason: 'PayloadTooLarge', field: 'spec' });
    expect(v!.message).toMatch(/more than the 262144 allowed for one transaction/);
    expect(findSpecViolation(slimForCache(tx([{ chunk }, { chunk }])), policy)).toBeUndefined();
  });
});

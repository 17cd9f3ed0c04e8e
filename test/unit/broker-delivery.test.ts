/**
 * Broker branches on the operator's side, without brokers: the message a
 * Deliver publishes (subject inside the tenant's namespace, key default,
 * expected stream, dedup id), the key lanes that keep a key's publishes in
 * order, how failures are reported, the engine keeping the ack in status, the
 * Stalled reason of a rejected publish, the spec checks and the flags. The
 * real brokers are in test/integration/broker-delivery.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { DistributedTransaction, TransactionStatus } from '../../src/api/types.js';
import { BrokerError } from '../../src/brokers/errors.js';
import type { BrokerMessage } from '../../src/brokers/message.js';
import type { PublishAck } from '../../src/brokers/router.js';
import { brokerOptions } from '../../src/cmd/broker-flags.js';
import { parseFlags } from '../../src/cmd/flags.js';
import { findSpecViolation } from '../../src/controller/spec-checks.js';
import { makeStep } from '../../src/engine/index.js';
import { normalizeDelivery } from '../../src/engine/common.js';
import { branchMessage, publishBranch, type BrokerPublisher } from '../../src/participants/broker-delivery.js';
import { KeyLanes } from '../../src/participants/key-lanes.js';
import { T0, outcome } from './engine-helpers.js';

function brokerTx(mode: 'Message' | 'Notify' | 'TCC' = 'Message', keys: Array<string | undefined> = ['order-7']): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: 'order-7', namespace: 'shop', uid: 'uid-7', generation: 1, creationTimestamp: new Date(T0).toISOString() },
    spec: {
      mode,
      payload: { orderId: 7 },
      ...(mode === 'Message' ? { message: { source: { endpoint: { service: { name: 'orders', port: 9090 } } }, decision: 'Commit' as const } } : {}),
      branches: keys.map((key, i) => ({ name: `b${i}`, broker: { subject: 'orders.created', ...(key ? { key } : {}) } })),
    },
  };
}

const policy = { allowCrossNamespace: false, allowRawAddresses: false, clusterDomainSuffix: 'svc.cluster.local', serviceOverrides: new Map(), addressRules: { allowCidrs: [], allowExact: new Set<string>(), ownPorts: new Set<number>() } };

/** A publisher that records what it was given and answers as told; `gate` holds a publish until released. */
function recordingPublisher(answer: (m: BrokerMessage) => Promise<PublishAck> | PublishAck = () => ({ via: 'nats', stream: 'ORDERS', seq: 1, duplicate: false })) {
  const seen: BrokerMessage[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const publisher: BrokerPublisher = {
    publish: async (m) => {
      seen.push(m);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await answer(m);
      } finally {
        inFlight--;
      }
    },
  };
  return { publisher, seen, maxInFlight: () => maxInFlight };
}

const deliver = (branch: string, attempt = 1) => ({ branch, method: 'Deliver' as const, attempt });

describe('broker branches: the message published', () => {
  it('subject inside the namespace, id <uid>/<branch>, key (default: the transaction name), payload JSON, expected stream', () => {
    const tx = brokerTx('Message', ['order-7', undefined]);
    tx.spec.branches[1]!.broker!.stream = 'ORDERS';
    const a = branchMessage(tx, 0, 'kubetx', undefined);
    expect(a).toMatchObject({ id: 'uid-7/b0', key: 'order-7', subject: 'kubetx.shop.orders.created', transaction: 'shop/order-7' });
    expect(JSON.parse(Buffer.from(a.data).toString())).toEqual({ orderId: 7 });
    expect(a.stream).toBeUndefined();
    const b = branchMessage(tx, 1, 'acme.tx', undefined);
    expect(b).toMatchObject({ id: 'uid-7/b1', key: 'order-7', subject: 'acme.tx.shop.orders.created', stream: 'ORDERS' });
  });

  it('no payload: JSON null; a subject the prefix makes too long: rejected before any publish', async () => {
    const tx = brokerTx();
    delete tx.spec.payload;
    expect(Buffer.from(branchMessage(tx, 0, 'kubetx', undefined).data).toString()).toBe('null');
    tx.spec.branches[0]!.broker!.subject = 'a'.repeat(250);
    const { publisher, seen } = recordingPublisher();
    const r = await publishBranch({ publisher, subjectPrefix: 'kubetx', lanes: new KeyLanes() }, tx, 0, deliver('b0'), Date.now() + 1000, undefined, undefined);
    expect(r).toMatchObject({ kind: 'retryable', code: 'BROKER_REJECTED' });
    expect(r.kind !== 'ok' && r.message).toMatch(/^BrokerRejected: InvalidMessage: .*at most 255/);
    expect(seen).toEqual([]);
  });

  it('the ack becomes the delivery; unavailable and rejected are told apart', async () => {
    const tx = brokerTx();
    const lanes = new KeyLanes();
    const run = (answer: Parameters<typeof recordingPublisher>[0]) => publishBranch({ publisher: recordingPublisher(answer).publisher, subjectPrefix: 'kubetx', lanes }, tx, 0, deliver('b0'), Date.now() + 1000, undefined, undefined);
    expect(await run(() => ({ via: 'nats', stream: 'ORDERS', seq: 42, duplicate: false }))).toEqual({ kind: 'ok', delivery: { route: 'nats', stream: 'ORDERS', sequence: '42' } });
    expect(await run(() => ({ via: 'redis', streamKey: 'kubetx:kubetx.shop.orders.created:17', entryId: '1-0', duplicate: true }))).toMatchObject({
      kind: 'ok',
      delivery: { route: 'redis', stream: 'kubetx:kubetx.shop.orders.created:17', sequence: '1-0', duplicate: true },
    });
    const down = await run(() => Promise.reject(new BrokerError('unavailable', 'redis', 'Timeout', 'no answer in 2000 ms')));
    expect(down).toMatchObject({ kind: 'retryable', code: 'BROKER_UNAVAILABLE' });
    expect(down.kind !== 'ok' && down.message).toBe('BrokerUnavailable: Timeout: redis: no answer in 2000 ms');
    const refused = await run(() => Promise.reject(new BrokerError('rejected', 'nats', 'NoStream', 'no JetStream stream captures subject "x"')));
    expect(refused).toMatchObject({ kind: 'retryable', code: 'BROKER_REJECTED' });
    expect(lanes.size).toBe(0);
  });
});

describe('key lanes: one publish per key at a time, in arrival order', () => {
  it('same key waits for the previous publish; other keys and other namespaces do not', async () => {
    const releases: Array<() => void> = [];
    const rec = recordingPublisher(() => new Promise<PublishAck>((resolve) => releases.push(() => resolve({ via: 'nats', stream: 'S', seq: releases.length, duplicate: false }))));
    const deps = { publisher: rec.publisher, subjectPrefix: 'kubetx', lanes: new KeyLanes() };
    const tx = brokerTx('Message', ['k', 'k', 'other']);
    const other = { ...brokerTx('Message', ['k']), metadata: { ...brokerTx().metadata, namespace: 'bank', uid: 'uid-8' } };
    const results = [0, 1, 2].map((i) => publishBranch(deps, tx, i, deliver(`b${i}`), Date.now() + 10_000, undefined, undefined));
    const otherNs = publishBranch(deps, other, 0, deliver('b0'), Date.now() + 10_000, undefined, undefined);
    await new Promise((r) => setImmediate(r));
    // b0 (key k), b2 (key other) and the other namespace's k run; b1 waits for b0.
    expect(rec.seen.map((m) => m.id)).toEqual(['uid-7/b0', 'uid-7/b2', 'uid-8/b0']);
    releases[0]!();
    await results[0];
    await new Promise((r) => setImmediate(r));
    expect(rec.seen.map((m) => m.id)).toEqual(['uid-7/b0', 'uid-7/b2', 'uid-8/b0', 'uid-7/b1']);
    for (const r of releases.slice(1)) r();
    await Promise.all([...results, otherNs]);
    expect(deps.lanes.size).toBe(0);
  });

  it('a waiter whose deadline passes leaves without publishing, and the one after it still waits for the first', async () => {
    const lanes = new KeyLanes();
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = lanes.run('k', { deadline: Date.now() + 10_000 }, () => new Promise<void>((r) => (releaseFirst = () => (order.push('first'), r()))));
    const second = lanes.run('k', { deadline: Date.now() + 20 }, async () => void order.push('second'));
    const third = lanes.run('k', { deadline: Date.now() + 10_000 }, async () => void order.push('third'));
    expect(await second).toEqual({ ran: false });
    await new Promise((r) => setTimeout(r, 30));
    expect(order).toEqual([]);
    releaseFirst();
    await Promise.all([first, third]);
    expect(order).toEqual(['first', 'third']);
    expect(lanes.size).toBe(0);
  });

  it('an aborted waiter leaves at once', async () => {
    const lanes = new KeyLanes();
    let release!: () => void;
    const first = lanes.run('k', { deadline: Date.now() + 10_000 }, () => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    const waiting = lanes.run('k', { deadline: Date.now() + 10_000, signal: ac.signal }, async () => 'ran');
    ac.abort();
    expect(await waiting).toEqual({ ran: false });
    release();
    expect(await first).toEqual({ ran: true, value: undefined });
  });
});

describe('the engine keeps the broker ack', () => {
  const step = makeStep();
  it('Message: Delivered with status.branches[].delivery; a malformed delivery is dropped', () => {
    const tx = brokerTx('Message', ['a', 'b']);
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 + 10 });
    expect(s1.calls.map((c) => c.branch)).toEqual(['b0', 'b1']);
    const s2 = step({
      tx,
      status: s1.status,
      outcomes: [
        outcome(s1.calls[0]!, 'ok', T0 + 20, { delivery: { route: 'nats', stream: 'ORDERS', sequence: '9' } }),
        outcome(s1.calls[1]!, 'ok', T0 + 20, { delivery: { route: 'kafka', stream: 'x', sequence: '1' } as never }),
      ],
      now: T0 + 30,
    });
    expect(s2.status.phase).toBe('Delivered');
    expect(s2.status.branches![0]!.delivery).toEqual({ route: 'nats', stream: 'ORDERS', sequence: '9' });
    expect(s2.status.branches![1]!.delivery).toBeUndefined();
    // Kept through later steps (a stored status read back).
    const again = step({ tx, status: JSON.parse(JSON.stringify(s2.status)) as TransactionStatus, outcomes: [], now: T0 + 40 });
    expect(again.status.branches![0]!.delivery).toEqual({ route: 'nats', stream: 'ORDERS', sequence: '9' });
  });

  it('Notify: the delivery is kept too', () => {
    const tx = brokerTx('Notify');
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 + 10 });
    const s2 = step({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 20, { delivery: { route: 'redis', stream: 'kubetx:s:1', sequence: '5-0', duplicate: true } })], now: T0 + 30 });
    expect(s2.status.phase).toBe('Delivered');
    expect(s2.status.branches![0]!.delivery).toEqual({ route: 'redis', stream: 'kubetx:s:1', sequence: '5-0', duplicate: true });
  });

  it('normalizeDelivery bounds what it keeps', () => {
    expect(normalizeDelivery({ route: 'nats', stream: 'S', sequence: '1', duplicate: 'yes' })).toEqual({ route: 'nats', stream: 'S', sequence: '1' });
    expect(normalizeDelivery({ route: 'nats', stream: 'S'.repeat(513), sequence: '1' })).toBeUndefined();
    expect(normalizeDelivery({ route: 'nats', stream: 'S', sequence: '' })).toBeUndefined();
    expect(normalizeDelivery('nats')).toBeUndefined();
  });

  it('a rejected publish marks the transaction Stalled at once (reason BrokerRejected); an unavailable one only after the attempts', () => {
    const tx = brokerTx();
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 + 10 });
    const rejected = step({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 20, { message: 'BrokerRejected: NoStream: nats: no JetStream stream captures subject "kubetx.shop.orders.created"' })], now: T0 + 30 });
    const stalled = rejected.status.conditions?.find((c) => c.type === 'Stalled');
    expect(stalled).toMatchObject({ status: 'True', reason: 'BrokerRejected' });
    expect(stalled?.message).toMatch(/fix spec\.branches\[\]\.broker or the broker/);
    const down = step({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 20, { message: 'BrokerUnavailable: Timeout: redis: no answer' })], now: T0 + 30 });
    expect(down.status.conditions?.find((c) => c.type === 'Stalled')).toBeUndefined();
  });
});

describe('spec checks for broker branches', () => {
  const broker = { subjectPrefix: 'kubetx' };
  it('refused without a broker configured, in TCC, beside an endpoint, or with a subject too long once prefixed', () => {
    expect(findSpecViolation(brokerTx(), policy, undefined, broker)).toBeUndefined();
    expect(findSpecViolation(brokerTx('Notify'), policy, undefined, broker)).toBeUndefined();
    expect(findSpecViolation(brokerTx(), policy)).toMatchObject({ reason: 'BrokerNotConfigured', field: 'spec.branches[0].broker', message: expect.stringContaining('--nats-url') });
    expect(findSpecViolation(brokerTx('TCC'), policy, undefined, broker)).toMatchObject({ reason: 'InvalidBroker', message: expect.stringContaining('Message and Notify') });
    const both = brokerTx();
    both.spec.branches[0]!.endpoint = { service: { name: 'x', port: 1 } };
    expect(findSpecViolation(both, policy, undefined, broker)).toMatchObject({ reason: 'InvalidBroker', message: 'spec.branches[0].broker: set exactly one of endpoint or broker' });
    const long = brokerTx();
    long.metadata.namespace = 'n'.repeat(20); // 40 + 1 + 20 + 1 + 203 > 255
    long.spec.branches[0]!.broker!.subject = 'a'.repeat(200).replace(/(.{50})/g, '$1.').replace(/\.$/, '');
    expect(findSpecViolation(long, policy, undefined, { subjectPrefix: 'x'.repeat(40) })).toMatchObject({ reason: 'InvalidBroker', field: 'spec.branches[0].broker.subject' });
  });
});

describe('broker flags', () => {
  const base = ['--nats-url', 'nats://nats:4222', '--redis-url', 'redis://redis:6379/0'];
  it('off without --nats-url; defaults with it', () => {
    expect(parseFlags([]).broker).toBeUndefined();
    expect(parseFlags(base).broker).toMatchObject({
      natsUrls: ['nats://nats:4222'], redisUrl: 'redis://redis:6379/0', subjectPrefix: 'kubetx', redisPrefix: 'kubetx', redisShards: 128,
      publishTimeoutMs: 2000, failureThreshold: 3, failureWindowMs: 10_000, recoverAfterMs: 10_000, probeMs: 1000, routeConfigMap: 'kubetx-broker-route',
    });
  });
  it.each([
    [['--redis-url', 'redis://r:6379'], '--redis-url needs --nats-url'],
    [['--nats-url', 'nats://n:4222'], '--redis-url is required with --nats-url'],
    [[...base, '--broker-redis-shards', '0'], '--broker-redis-shards: want an integer 1..1024'],
    [[...base, '--broker-subject-prefix', 'a.*'], '--broker-subject-prefix: subject "a.*" has the wildcard'],
    [[...base, '--nats-stream', 'a.b'], '--nats-stream: want a stream name'],
    [[...base, '--broker-recover-after', 'soon'], '--broker-recover-after:'],
    [['--nats-url', 'http://n', '--redis-url', 'redis://r'], '--nats-url: want nats://host:port'],
  ])('%j → %s', (args, message) => {
    expect(() => parseFlags(args)).toThrow(message);
  });
  it('every broker option has a usage line', async () => {
    const { usage } = await import('../../src/cmd/flags.js');
    for (const name of Object.keys(brokerOptions)) expect(usage, name).toContain(`--${name} `);
  });
});

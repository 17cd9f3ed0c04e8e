/**
 * The broker wire format (src/brokers/message.ts) that consumers implement
 * too: subject rules, message checks, the Redis shard and key layout.
 */
import { describe, expect, it } from 'vitest';
import { fnv1a64 } from '../../src/controller/sharding/hash-range.js';
import {
  brokerMessage,
  MAX_DATA_BYTES,
  messageId,
  messageProblem,
  redisDedupKey,
  redisFields,
  redisShard,
  redisStreamKey,
  subjectProblem,
  type BrokerMessage,
} from '../../src/brokers/message.js';
import { BrokerError, withTimeout } from '../../src/brokers/errors.js';

const base: BrokerMessage = { id: 'uid-1/ship', key: 'order-1', subject: 'orders.created', transaction: 'shop/pay-1', data: new TextEncoder().encode('{}') };

describe('broker message format', () => {
  it.each([
    ['orders', undefined],
    ['orders.created', undefined],
    ['a_b-C.9', undefined],
    ['', /empty/],
    ['orders.', /empty token/],
    ['.orders', /empty token/],
    ['orders..x', /empty token/],
    ['orders.*', /wildcard/],
    ['orders.>', /wildcard/],
    ['orders.cré', /letters, digits/],
    ['orders x', /letters, digits/],
    ['x'.repeat(256), /at most 255/],
  ])('subject %j', (subject, problem) => {
    const p = subjectProblem(subject);
    if (problem === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(problem);
  });

  it('checks id, key, transaction and size', () => {
    expect(messageProblem(base)).toBeUndefined();
    expect(messageProblem({ ...base, id: 'no-slash' })).toMatch(/uid/);
    expect(messageProblem({ ...base, id: '/branch' })).toMatch(/uid/);
    expect(messageProblem({ ...base, key: '' })).toMatch(/key/);
    expect(messageProblem({ ...base, key: 'a\r\nb' })).toMatch(/control/);
    expect(messageProblem({ ...base, transaction: 'noslash' })).toMatch(/namespace/);
    expect(messageProblem({ ...base, data: new Uint8Array(MAX_DATA_BYTES + 1) })).toMatch(/at most 65536/);
    expect(messageProblem({ ...base, data: new Uint8Array(MAX_DATA_BYTES) })).toBeUndefined();
  });

  it('builds a message from a branch', () => {
    const m = brokerMessage({ uid: 'u1', branch: 'ship', key: 'k', subject: 'orders.created', namespace: 'shop', name: 'pay-1', payload: { a: 1 } });
    expect(m).toMatchObject({ id: messageId('u1', 'ship'), key: 'k', subject: 'orders.created', transaction: 'shop/pay-1' });
    expect(new TextDecoder().decode(m.data)).toBe('{"a":1}');
    expect(() => brokerMessage({ uid: 'u1', branch: 'ship', key: 'k', subject: 'orders.*', namespace: 'shop', name: 'pay-1', payload: {} })).toThrow(/wildcard/);
  });

  it('Redis layout: shard = fnv1a64(key) mod shards, spread over many keys', () => {
    for (const key of ['order-1', 'order-2', 'ключ', '']) expect(redisShard(key, 128)).toBe(Number(fnv1a64(key) % 128n));
    expect(redisShard('order-1')).toBe(redisShard('order-1', 128));
    const used = new Set(Array.from({ length: 1000 }, (_, i) => redisShard(`order-${i}`, 128)));
    expect(used.size).toBeGreaterThan(120);
    expect(redisStreamKey('kubetx', 'orders.created', 7)).toBe('kubetx:orders.created:7');
    expect(redisDedupKey('kubetx', 'uid-1/ship')).toBe('kubetx:dedup:uid-1/ship');
    expect(redisFields(base)).toEqual(['id', 'uid-1/ship', 'key', 'order-1', 'transaction', 'shop/pay-1', 'data', '{}']);
  });

  it('withTimeout bounds a hanging call', async () => {
    const err = new BrokerError('unavailable', 'redis', 'Timeout', 'slow');
    await expect(withTimeout(new Promise(() => undefined), 20, () => err)).rejects.toBe(err);
    await expect(withTimeout(Promise.resolve(1), 20, () => err)).resolves.toBe(1);
    expect(err.message).toBe('redis: slow');
  });
});

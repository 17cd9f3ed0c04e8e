import { describe, expect, it } from 'vitest';
import { EndpointLimiter } from '../../src/participants/endpoint-limiter.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('EndpointLimiter', () => {
  it('admits up to max per target, then queues FIFO', async () => {
    const l = new EndpointLimiter(2);
    const order: number[] = [];
    const r1 = (await l.acquire('a'))!;
    const r2 = (await l.acquire('a'))!;
    const waiters = [3, 4, 5].map((n) => l.acquire('a').then((rel) => (order.push(n), rel)));
    await tick();
    expect(order).toEqual([]);
    expect(l.stats('a')).toEqual({ active: 2, waiting: 3 });
    r1();
    r1(); // double release is a no-op
    await tick();
    expect(order).toEqual([3]);
    r2();
    await tick();
    expect(order).toEqual([3, 4]);
    const rel = await Promise.all(waiters.slice(0, 2));
    rel[0]!();
    await tick();
    expect(order).toEqual([3, 4, 5]);
    rel[1]!();
    (await waiters[2]!)!();
    expect(l.stats('a')).toEqual({ active: 0, waiting: 0 });
  });

  it('keeps targets independent', async () => {
    const l = new EndpointLimiter(1);
    await l.acquire('a');
    const b = await Promise.race([l.acquire('b').then(() => 'b'), tick().then(() => 'blocked')]);
    expect(b).toBe('b');
    const a = await Promise.race([l.acquire('a').then(() => 'a'), tick().then(() => 'blocked')]);
    expect(a).toBe('blocked');
  });

  it('totals() sums in-flight and waiting calls over every target', async () => {
    const l = new EndpointLimiter(1);
    const relA = (await l.acquire('a'))!;
    await l.acquire('b');
    const queued = l.acquire('a');
    void l.acquire('a');
    expect(l.totals()).toEqual({ active: 2, waiting: 2 });
    relA();
    await queued;
    expect(l.totals()).toEqual({ active: 2, waiting: 1 });
  });

  it('max 0 is unlimited', async () => {
    const l = new EndpointLimiter(0);
    for (let i = 0; i < 100; i++) await l.acquire('a');
    expect(l.stats('a')).toEqual({ active: 0, waiting: 0 });
  });

  it('a waiter whose deadline passes gets no slot, leaves the line, and the next waiter is served', async () => {
    const l = new EndpointLimiter(1);
    const held = (await l.acquire('a'))!;
    const late = l.acquire('a', { deadline: Date.now() + 20 });
    const patient = l.acquire('a');
    expect(await late).toBeUndefined();
    expect(l.stats('a')).toEqual({ active: 1, waiting: 1 });
    held();
    const rel = await patient;
    expect(rel).toBeTypeOf('function');
    rel!();
    expect(l.stats('a')).toEqual({ active: 0, waiting: 0 });
  });

  it('an aborted waiter (its transaction was deleted) leaves the line at once', async () => {
    const l = new EndpointLimiter(1);
    const held = (await l.acquire('a'))!;
    const ac = new AbortController();
    const waiting = l.acquire('a', { signal: ac.signal });
    await tick();
    expect(l.stats('a').waiting).toBe(1);
    ac.abort();
    expect(await waiting).toBeUndefined();
    expect(l.stats('a')).toEqual({ active: 1, waiting: 0 });
    expect(await l.acquire('a', { signal: ac.signal })).toBeUndefined();
    held();
    expect(l.stats('a')).toEqual({ active: 0, waiting: 0 });
  });
});

/** The work queue's rate limiters against a fake clock: no sleeps, client-go's numbers. */
import { describe, expect, it, vi } from 'vitest';
import { BucketRateLimiter, controllerRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter } from '../../src/controller/rate-limiter.js';
import { WorkQueue } from '../../src/controller/queue.js';

function fakeClock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('ItemExponentialFailureRateLimiter', () => {
  it('doubles per failure from 5 ms, caps at 1000 s, and starts again after forget', () => {
    const l = new ItemExponentialFailureRateLimiter();
    const delays = Array.from({ length: 6 }, () => l.when('a'));
    expect(delays).toEqual([5, 10, 20, 40, 80, 160]);
    expect(l.numRequeues('a')).toBe(6);
    expect(l.when('b')).toBe(5);
    for (let i = 0; i < 2000; i++) l.when('a');
    expect(l.when('a')).toBe(1_000_000);
    l.forget('a');
    expect(l.numRequeues('a')).toBe(0);
    expect(l.when('a')).toBe(5);
  });
});

describe('BucketRateLimiter (golang.org/x/time/rate Reserve().Delay())', () => {
  it('lets `burst` through at once, then spaces them 1/qps apart', () => {
    const c = fakeClock();
    const l = new BucketRateLimiter(10, 100, c.now);
    const first = Array.from({ length: 100 }, () => l.when());
    expect(first.every((d) => d === 0)).toBe(true);
    // The bucket is empty: each next token is borrowed 100 ms further into the future.
    expect(l.when()).toBeCloseTo(100, 6);
    expect(l.when()).toBeCloseTo(200, 6);
    expect(l.when()).toBeCloseTo(300, 6);
  });

  it('refills at qps, never above burst', () => {
    const c = fakeClock();
    const l = new BucketRateLimiter(10, 5, c.now);
    for (let i = 0; i < 5; i++) expect(l.when()).toBe(0);
    c.advance(250); // 2.5 tokens
    expect(l.when()).toBe(0);
    expect(l.when()).toBe(0);
    expect(l.when()).toBeCloseTo(50, 6); // 0.5 left, 0.5 more needed = 50 ms
    c.advance(3_600_000); // an hour idle: still only `burst` at once
    for (let i = 0; i < 5; i++) expect(l.when()).toBe(0);
    expect(l.when()).toBeCloseTo(100, 6);
  });

  it('a reservation counts even while the wait is ahead: debt is paid before new tokens count', () => {
    const c = fakeClock();
    const l = new BucketRateLimiter(1, 1, c.now);
    expect(l.when()).toBe(0);
    expect(l.when()).toBeCloseTo(1000, 6);
    expect(l.when()).toBeCloseTo(2000, 6);
    c.advance(1500);
    // tokens were -2; 1.5 refilled → -0.5 → take one → -1.5: 1500 ms.
    expect(l.when()).toBeCloseTo(1500, 6);
  });

  it('refuses a bucket that could never admit anything', () => {
    expect(() => new BucketRateLimiter(0, 10)).toThrow(/qps/);
    expect(() => new BucketRateLimiter(10, 0)).toThrow(/burst/);
    expect(() => new BucketRateLimiter(10, 1.5)).toThrow(/burst/);
  });
});

describe('controllerRateLimiter (client-go DefaultControllerRateLimiter)', () => {
  it('is the larger of the per-key backoff and the shared bucket', () => {
    const c = fakeClock();
    const l = controllerRateLimiter({ qps: 10, burst: 3, now: c.now });
    // Three different keys: the bucket's burst; each key's own backoff is 5 ms.
    expect([l.when('a'), l.when('b'), l.when('c')]).toEqual([5, 5, 5]);
    // A fourth key finds the bucket empty: 100 ms, more than its 5 ms backoff.
    expect(l.when('d')).toBeCloseTo(100, 6);
    // Much later the bucket is full again and the per-key backoff rules: a's 2nd failure waits 10 ms.
    c.advance(10_000);
    expect(l.when('a')).toBe(10);
    l.forget('a');
    expect(l.when('a')).toBe(5);
    expect(l.numRequeues('a')).toBe(1);
  });

  it('qps 0 = per-key backoff only', () => {
    const l = controllerRateLimiter({ qps: 0 });
    for (let i = 0; i < 1000; i++) expect(l.when(`k${i}`)).toBe(5);
  });

  it('MaxOfRateLimiter asks every limiter each time (the bucket spends a token even when the backoff is longer)', () => {
    const c = fakeClock();
    const bucket = new BucketRateLimiter(1, 1, c.now);
    const l = new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(5000, 10_000), bucket);
    expect(l.when('a')).toBe(5000);
    expect(bucket.when()).toBeCloseTo(1000, 6);
  });
});

describe('WorkQueue.addRateLimited with the overall bucket', () => {
  it('admits a storm of failing keys at qps after the burst; plain adds are never limited', async () => {
    vi.useFakeTimers();
    try {
      const c = fakeClock();
      const q = new WorkQueue({ rateLimiter: controllerRateLimiter({ qps: 10, burst: 5, now: c.now }) });
      for (let i = 0; i < 10; i++) q.addRateLimited(`ns/fail-${i}`);
      // First adds do not touch the bucket.
      for (let i = 0; i < 20; i++) q.add(`ns/new-${i}`);
      expect(q.length).toBe(20);
      vi.advanceTimersByTime(5);
      expect(q.length).toBe(25); // the burst, after each key's 5 ms
      vi.advanceTimersByTime(95);
      expect(q.length).toBe(26); // then one per 100 ms
      vi.advanceTimersByTime(400);
      expect(q.length).toBe(30);
      expect(q.scheduled).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

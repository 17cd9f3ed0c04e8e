import { describe, expect, it, vi } from 'vitest';
import { WorkQueue } from '../../src/controller/queue.js';
import { ItemExponentialFailureRateLimiter } from '../../src/controller/rate-limiter.js';

describe('WorkQueue', () => {
  it('collapses duplicate adds of a waiting key', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands out a key that is being processed; an add during processing runs it once more afterwards', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length).toBe(0);
    expect(q.inFlight).toBe(1);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.length).toBe(0);
  });

  it('addAfter keeps only the earliest timer per key', () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      q.addAfter('a', 1000);
      q.addAfter('a', 5000);
      q.addAfter('a', 200);
      vi.advanceTimersByTime(199);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(1);
      expect(q.length).toBe(1);
      vi.advanceTimersByTime(10_000);
      expect(q.length).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('backs off exponentially per key on failures and forgets after success', () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue({ rateLimiter: new ItemExponentialFailureRateLimiter(10, 1000) });
      const delays: number[] = [];
      for (let i = 0; i < 4; i++) {
        q.addRateLimited('a');
        let waited = 0;
        while (q.length === 0) {
          vi.advanceTimersByTime(1);
          waited++;
        }
        delays.push(waited);
        void q.get();
        q.done('a');
      }
      expect(delays).toEqual([10, 20, 40, 80]);
      q.forget('a');
      q.addRateLimited('a');
      vi.advanceTimersByTime(10);
      expect(q.length).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('wakes waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
  });

  it('serves namespaces in turn: a backlog of 1,000 keys in one namespace delays another namespace by one key', async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 1000; i++) q.add(`busy/tx-${i}`);
    q.add('quiet/tx-0');
    q.add('quiet/tx-1');
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const k = (await q.get())!;
      order.push(k);
      q.done(k);
    }
    expect(order).toEqual(['busy/tx-0', 'quiet/tx-0', 'busy/tx-1', 'quiet/tx-1', 'busy/tx-2', 'busy/tx-3']);
    // Within one namespace the order stays FIFO, and nothing is lost or doubled.
    const rest: string[] = [];
    while (q.length > 0) {
      const k = (await q.get())!;
      rest.push(k);
      q.done(k);
    }
    expect(rest).toEqual(Array.from({ length: 996 }, (_, i) => `busy/tx-${i + 4}`));
  });

  it('a 720 h requeue fires once, after 720 h, not at once (Node timers hold at most 24.8 days)', () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      const h = 3_600_000;
      q.addAfter('ns/ttl', 720 * h);
      vi.advanceTimersByTime(1);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(719 * h);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(h - 2);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(1);
      expect(q.length).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('drop() cancels a deleted object\'s pending timer', () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      q.addAfter('ns/gone', 1000);
      q.drop('ns/gone');
      vi.advanceTimersByTime(5000);
      expect(q.length).toBe(0);
      expect(q.scheduled).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

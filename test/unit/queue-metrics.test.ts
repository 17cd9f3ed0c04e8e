/**
 * The work queue's client-go metrics against a controllable clock: what is
 * counted as an add, the queue and work durations, and the scrape-time
 * depth, unfinished work and longest-running processor.
 */
import { describe, expect, it, vi } from 'vitest';
import { WorkQueue, type QueueMetrics } from '../../src/controller/queue.js';
import { ItemExponentialFailureRateLimiter } from '../../src/controller/rate-limiter.js';
import { CONTROLLER_NAME, OperatorMetrics } from '../../src/controller/metrics.js';
import { counterValue } from '../support/operator.js';

function recorder() {
  const seen = { added: 0, retried: 0, queued: [] as number[], worked: [] as number[] };
  const metrics: QueueMetrics = {
    added: () => void seen.added++,
    retried: () => void seen.retried++,
    queued: (s) => void seen.queued.push(s),
    worked: (s) => void seen.worked.push(s),
  };
  return { seen, metrics };
}

function clock() {
  let t = 50_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('WorkQueue metrics (client-go semantics)', () => {
  it('counts an add only when it makes a key dirty; depth includes keys re-added while processed', async () => {
    const c = clock();
    const { seen, metrics } = recorder();
    const q = new WorkQueue({ metrics, now: c.now });
    q.add('ns/a');
    q.add('ns/a'); // queued already: a no-op, not counted
    q.add('ns/b');
    expect(seen.added).toBe(2);
    expect(q.depth).toBe(2);
    const a = (await q.get())!;
    expect(q.depth).toBe(1);
    q.add(a); // being processed: marked dirty, counted once
    q.add(a);
    expect(seen.added).toBe(3);
    expect(q.depth).toBe(2);
    expect(q.length).toBe(1); // but only b waits for a worker
    q.done(a); // back in the queue, not counted again
    expect(seen.added).toBe(3);
    expect(q.depth).toBe(2);
    expect(q.length).toBe(2);
  });

  it('queue duration runs from the first add to get (a re-add while processed included); work duration from get to done', async () => {
    const c = clock();
    const { seen, metrics } = recorder();
    const q = new WorkQueue({ metrics, now: c.now });
    q.add('ns/a');
    c.advance(250);
    q.add('ns/a'); // does not restart the clock
    c.advance(250);
    expect(await q.get()).toBe('ns/a');
    expect(seen.queued).toEqual([0.5]);
    c.advance(2000);
    q.add('ns/a'); // while processing
    c.advance(1000);
    q.done('ns/a');
    expect(seen.worked).toEqual([3]);
    c.advance(100);
    expect(await q.get()).toBe('ns/a');
    // From the add during processing: 1 s of processing left + 0.1 s in the queue.
    expect(seen.queued).toEqual([0.5, 1.1]);
    q.done('ns/a');
    expect(seen.worked).toEqual([3, 0]);
  });

  it('unfinished work and the longest-running processor, at any moment', async () => {
    const c = clock();
    const q = new WorkQueue({ metrics: recorder().metrics, now: c.now });
    expect(q.unfinishedWork()).toEqual({ totalSeconds: 0, longestSeconds: 0 });
    q.add('ns/a');
    q.add('ns/b');
    await q.get();
    c.advance(3000);
    await q.get();
    c.advance(1000);
    expect(q.unfinishedWork()).toEqual({ totalSeconds: 5, longestSeconds: 4 });
    q.done('ns/a');
    expect(q.unfinishedWork()).toEqual({ totalSeconds: 1, longestSeconds: 1 });
    q.done('ns/b');
    expect(q.unfinishedWork()).toEqual({ totalSeconds: 0, longestSeconds: 0 });
  });

  it('every addAfter and addRateLimited is a retry (client-go counts all delayed adds), plain adds are not', () => {
    vi.useFakeTimers();
    try {
      const { seen, metrics } = recorder();
      const q = new WorkQueue({ metrics, rateLimiter: new ItemExponentialFailureRateLimiter(5, 1000) });
      q.add('ns/a');
      q.addAfter('ns/b', 1000);
      q.addAfter('ns/b', 2000); // later than the pending timer: ignored, still counted
      q.addRateLimited('ns/c');
      q.addAfter('ns/d', 0); // no delay: added at once
      expect(seen.retried).toBe(4);
      expect(seen.added).toBe(2); // a and d
      vi.advanceTimersByTime(1000);
      expect(seen.added).toBe(4);
      expect(q.length).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('OperatorMetrics: the workqueue_* and controller_runtime_* series', () => {
  it('exports the queue figures with name and controller labels, gauges computed at scrape time', async () => {
    const c = clock();
    const m = new OperatorMetrics();
    const q = new WorkQueue({ metrics: m.queueMetrics(), now: c.now });
    m.queueSource = () => {
      const u = q.unfinishedWork();
      return { depth: q.depth, waiting: q.length, active: q.inFlight, unfinishedSeconds: u.totalSeconds, longestSeconds: u.longestSeconds };
    };
    const labels = { name: CONTROLLER_NAME, controller: CONTROLLER_NAME };
    let text = await m.registry.metrics();
    // Initialised at zero before the first add.
    expect(counterValue(text, 'workqueue_adds_total', labels)).toBe(0);
    expect(text).toContain('workqueue_queue_duration_seconds_count{name="distributedtransaction",controller="distributedtransaction"} 0');
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="distributedtransaction",result="requeue_after"\} 0/);

    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/c');
    c.advance(20);
    await q.get();
    c.advance(1500);
    text = await m.registry.metrics();
    expect(counterValue(text, 'workqueue_adds_total', labels)).toBe(3);
    expect(counterValue(text, 'kubetx_workqueue_adds_total')).toBe(3);
    expect(counterValue(text, 'workqueue_depth', labels)).toBe(2);
    expect(counterValue(text, 'kubetx_workqueue_depth')).toBe(2);
    expect(counterValue(text, 'controller_runtime_active_workers', { controller: CONTROLLER_NAME })).toBe(1);
    expect(counterValue(text, 'workqueue_unfinished_work_seconds', labels)).toBeCloseTo(1.5, 9);
    expect(counterValue(text, 'workqueue_longest_running_processor_seconds', labels)).toBeCloseTo(1.5, 9);
    expect(counterValue(text, 'workqueue_queue_duration_seconds_count', labels)).toBe(1);
    // 20 ms lands in the 0.1 s bucket (buckets 1e-8 … 1e3, powers of ten), not the 0.01 s one.
    expect(counterValue(text, 'workqueue_queue_duration_seconds_bucket', { ...labels, le: '0.01' })).toBe(0);
    expect(counterValue(text, 'workqueue_queue_duration_seconds_bucket', { ...labels, le: '0.1' })).toBe(1);
    expect(counterValue(text, 'workqueue_queue_duration_seconds_bucket', { ...labels, le: '1000' })).toBe(1);
    expect(text).toContain('le="1e-8"');
    q.done('ns/a');
    text = await m.registry.metrics();
    expect(counterValue(text, 'workqueue_work_duration_seconds_sum', labels)).toBeCloseTo(1.5, 9);
    expect(counterValue(text, 'workqueue_unfinished_work_seconds', labels)).toBe(0);
    expect(counterValue(text, 'controller_runtime_active_workers', { controller: CONTROLLER_NAME })).toBe(0);
  });
});

/**
 * A work queue in the manner of client-go's: a key is processed by at most one
 * worker at a time; adding a key that is already queued is a no-op; adding a
 * key that is being processed marks it dirty so it runs once more afterwards.
 * Timed adds (`addAfter`) keep only the earliest pending timer per key, and
 * hold any delay (a 720 h TTL fires once, after 720 h: see timers.ts).
 * Rate-limited requeues (`addRateLimited`, after a failure or a lost write
 * race) wait as long as the rate limiter says: by default client-go's
 * DefaultControllerRateLimiter, per-key exponential backoff 5 ms → 1000 s
 * (reset by `forget` after a success) bounded by one token bucket for all
 * keys (rate-limiter.ts).
 *
 * Fair between tenants: keys are "namespace/name", and each namespace has its
 * own FIFO. `get` takes from the namespaces in turn, so a namespace with a
 * thousand queued transactions delays another namespace's next key by at most
 * one reconcile per busy namespace, not by its whole backlog.
 *
 * Metrics follow client-go's (util/workqueue/metrics.go): an add counts when
 * it makes a key dirty (queued, or marked to run again), not when it is a
 * no-op; the queue duration runs from that first add to the `get` that hands
 * the key out; the work duration from `get` to `done`; every `addAfter`
 * (rate-limited or timed) is a retry. Depth and the in-progress figures are
 * read at scrape time (`depth`, `unfinishedWork`): nothing per operation.
 */
import { setLongTimeout, type LongTimer } from './timers.js';
import { controllerRateLimiter, type RateLimiter } from './rate-limiter.js';

export interface QueueMetrics {
  /** An add that made a key dirty (client-go's workqueue_adds_total). */
  added(): void;
  /** Seconds from a key's first add to the get that handed it out. */
  queued(seconds: number): void;
  /** Seconds from get to done. */
  worked(seconds: number): void;
  /** An addAfter or addRateLimited call. */
  retried(): void;
}

export interface WorkQueueOptions {
  metrics?: QueueMetrics;
  /** Delays of rate-limited requeues. @default controllerRateLimiter() (client-go's default: 5 ms…1000 s per key, 10 qps / 100 burst overall) */
  rateLimiter?: RateLimiter;
  /** Monotonic milliseconds for the metrics. @default performance.now */
  now?: () => number;
}

/** The tenant a key belongs to: the namespace part of "namespace/name". */
export function tenantOf(key: string): string {
  const i = key.indexOf('/');
  return i < 0 ? '' : key.slice(0, i);
}

export class WorkQueue {
  /** namespace → its keys in arrival order. */
  private readonly byTenant = new Map<string, string[]>();
  /** Namespaces with queued keys, in the order they are served next. */
  private readonly turn: string[] = [];
  private readonly queued = new Set<string>();
  /** key → when its processing began. */
  private readonly processing = new Map<string, number>();
  private readonly dirty = new Set<string>();
  /** key → when it was first added since it was last handed out (with metrics only). */
  private readonly addedAt = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: LongTimer }>();
  private readonly waiters: Array<() => void> = [];
  private readonly metrics?: QueueMetrics;
  private readonly limiter: RateLimiter;
  private readonly now: () => number;
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.metrics = opts.metrics;
    this.limiter = opts.rateLimiter ?? controllerRateLimiter();
    this.now = opts.now ?? (() => performance.now());
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      if (!this.dirty.has(key)) {
        this.dirty.add(key);
        this.noteAdded(key);
      }
      return;
    }
    if (this.queued.has(key)) return;
    this.noteAdded(key);
    this.push(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    this.metrics?.retried();
    if (!(delayMs > 0)) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    existing?.timer.clear();
    const timer = setLongTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { at, timer });
  }

  /** Requeue after a failure, when the rate limiter says (per-key backoff, overall bucket). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.limiter.when(key));
  }

  /** The key succeeded: its backoff starts again from the base delay. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Failures of `key` since its last success. */
  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /** Next key to process, or undefined once shut down. */
  async get(): Promise<string | undefined> {
    while (this.queued.size === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const tenant = this.turn.shift()!;
    const keys = this.byTenant.get(tenant)!;
    const key = keys.shift()!;
    if (keys.length > 0) this.turn.push(tenant);
    else this.byTenant.delete(tenant);
    this.queued.delete(key);
    const now = this.now();
    this.processing.set(key, now);
    const added = this.addedAt.get(key);
    if (added !== undefined) {
      this.addedAt.delete(key);
      this.metrics!.queued((now - added) / 1000);
    }
    return key;
  }

  /** Must be called after every get(). */
  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (this.metrics && started !== undefined) this.metrics.worked((this.now() - started) / 1000);
    // Added while it was processed: counted then, queued now.
    if (this.dirty.delete(key) && !this.shuttingDown) this.push(key);
  }

  /** Drops a key's pending timer and backoff (its object is gone). A queued add still runs, and finds nothing. */
  drop(key: string): void {
    this.timers.get(key)?.timer.clear();
    this.timers.delete(key);
    this.limiter.forget(key);
  }

  /** Keys waiting for a worker. */
  get length(): number {
    return this.queued.size;
  }

  /** client-go's depth: keys to be handed out, those added again while being processed included. */
  get depth(): number {
    return this.queued.size + this.dirty.size;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting behind timers (requeue-after and backoff). */
  get scheduled(): number {
    return this.timers.size;
  }

  /**
   * Seconds of work in progress not yet observed as a work duration (the sum
   * over keys being processed) and the longest of them (client-go's
   * unfinished_work_seconds and longest_running_processor_seconds).
   */
  unfinishedWork(): { totalSeconds: number; longestSeconds: number } {
    const now = this.now();
    let total = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      const age = Math.max(0, now - started) / 1000;
      total += age;
      if (age > longest) longest = age;
    }
    return { totalSeconds: total, longestSeconds: longest };
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) timer.clear();
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  private noteAdded(key: string): void {
    if (!this.metrics) return;
    this.metrics.added();
    if (!this.addedAt.has(key)) this.addedAt.set(key, this.now());
  }

  private push(key: string): void {
    this.queued.add(key);
    const tenant = tenantOf(key);
    let keys = this.byTenant.get(tenant);
    if (!keys) {
      keys = [];
      this.byTenant.set(tenant, keys);
      this.turn.push(tenant);
    }
    keys.push(key);
    this.waiters.shift()?.();
  }
}

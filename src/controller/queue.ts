/**
 * A work queue in the manner of client-go's: a key is processed by at most one
 * worker at a time; adding a key that is already queued is a no-op; adding a
 * key that is being processed marks it dirty so it runs once more afterwards.
 * Timed adds (`addAfter`) keep only the earliest pending timer per key, and
 * hold any delay (a 720 h TTL fires once, after 720 h: see timers.ts).
 * Failures are retried with per-key exponential backoff (5 ms → 1000 s, as
 * controller-runtime), reset by `forget` after a success.
 *
 * Fair between tenants: keys are "namespace/name", and each namespace has its
 * own FIFO. `get` takes from the namespaces in turn, so a namespace with a
 * thousand queued transactions delays another namespace's next key by at most
 * one reconcile per busy namespace, not by its whole backlog.
 */
import { setLongTimeout, type LongTimer } from './timers.js';

export interface QueueMetrics {
  depth(n: number): void;
  adds(): void;
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
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: LongTimer }>();
  private readonly failures = new Map<string, number>();
  private readonly waiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly metrics?: QueueMetrics,
    private readonly baseDelayMs = 5,
    private readonly maxDelayMs = 1_000_000,
  ) {}

  add(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.adds();
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    const tenant = tenantOf(key);
    let keys = this.byTenant.get(tenant);
    if (!keys) {
      keys = [];
      this.byTenant.set(tenant, keys);
      this.turn.push(tenant);
    }
    keys.push(key);
    this.metrics?.depth(this.queued.size);
    this.waiters.shift()?.();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
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

  /** Requeue after a failure, with per-key exponential backoff. */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.addAfter(key, Math.min(this.baseDelayMs * 2 ** Math.min(n, 60), this.maxDelayMs));
  }

  forget(key: string): void {
    this.failures.delete(key);
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
    this.processing.add(key);
    this.metrics?.depth(this.queued.size);
    return key;
  }

  /** Must be called after every get(). */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Drops a key's pending timer and backoff (its object is gone). A queued add still runs, and finds nothing. */
  drop(key: string): void {
    this.timers.get(key)?.timer.clear();
    this.timers.delete(key);
    this.failures.delete(key);
  }

  get length(): number {
    return this.queued.size;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting behind timers (requeue-after and backoff). */
  get scheduled(): number {
    return this.timers.size;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) timer.clear();
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}

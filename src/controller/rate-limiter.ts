/**
 * The work queue's rate limiters, after client-go's
 * (util/workqueue/default_rate_limiters.go): how long a key waits before a
 * rate-limited requeue (`WorkQueue.addRateLimited`: a failed reconcile, a
 * status write that lost a race) puts it back in the queue.
 *
 * The default is client-go's DefaultControllerRateLimiter: the larger of a
 * per-key exponential backoff (5 ms, 10 ms, 20 ms … capped at 1000 s, reset by
 * `forget` after a success) and one token bucket shared by every key, so a
 * storm of failures (an API server that answers 500 to everything) comes back
 * at a bounded rate instead of all at once. First adds (watch events, resyncs,
 * the end of a batch of participant calls) and timed requeues never touch the
 * bucket, exactly as in client-go, where only AddRateLimited consults it.
 *
 * Time is in milliseconds from an injectable monotonic clock, so tests move
 * time instead of sleeping.
 */

export interface RateLimiter {
  /** How long (ms) `key` waits before it is queued again; counts one more failure for it. */
  when(key: string): number;
  /** `key` is done being retried (it succeeded, or it is gone): forget its failures. */
  forget(key: string): void;
  /** Failures counted for `key` since its last `forget`. */
  numRequeues(key: string): number;
}

/** baseMs · 2^failures, capped at maxMs (client-go's ItemExponentialFailureRateLimiter). */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 1_000_000,
  ) {}

  when(key: string): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    // 2 ** 1100 is Infinity, and Math.min caps it: no overflow to guard against.
    return Math.min(this.baseMs * 2 ** exp, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * A token bucket shared by every key (client-go's BucketRateLimiter over
 * golang.org/x/time/rate: `When` is `Reserve().Delay()`). It starts full with
 * `burst` tokens and refills at `qps` per second up to `burst`; every `when`
 * takes a token, borrowing from the future when none is left, and returns how
 * long until that token exists. So `burst` requeues go at once, the next ones
 * 1/qps apart.
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(qps > 0) || !Number.isFinite(qps)) throw new Error(`token bucket: qps must be a finite number > 0, got ${qps}`);
    if (!Number.isInteger(burst) || burst < 1) throw new Error(`token bucket: burst must be an integer >= 1, got ${burst}`);
    this.tokens = burst;
    this.last = now();
  }

  when(): number {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.qps) / 1000) - 1;
    this.last = t;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** The largest delay of several limiters; each is asked every time (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(key));
    return max;
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.numRequeues(key));
    return max;
  }
}

/**
 * The operator's bucket (--queue-qps, --queue-burst): client-go's burst, five
 * times its rate. Rate-limited requeues are rare in normal operation (none in
 * the throughput benchmark: no errors, no lost races), so no value here lowers
 * steady throughput. What it decides is the recovery from a storm: with 300
 * transactions whose status writes were refused for 10 s, all 300 committed
 * 31 s after the writes were allowed again at 10 qps (the bucket's debt), 6 s
 * at 50 qps, 4 s with no bucket; the refused retries during those 10 s were
 * 504, 861 and 2815. 50/s lets the operator catch up at about its own
 * throughput while keeping a retry storm to a third of the unbounded one.
 */
export const QUEUE_DEFAULTS = { qps: 50, burst: 100 } as const;

export interface ControllerRateLimiterOptions {
  /** Tokens per second of the overall bucket; 0 = no overall limit (per-key backoff only). @default 10 */
  qps?: number;
  /** Size of the overall bucket. @default 100 */
  burst?: number;
  /** @default 5 */
  baseDelayMs?: number;
  /** @default 1_000_000 (1000 s) */
  maxDelayMs?: number;
  /** Monotonic milliseconds. @default performance.now */
  now?: () => number;
}

/**
 * client-go's DefaultControllerRateLimiter with its numbers as defaults:
 * max(per-key exponential 5 ms … 1000 s, a 10 qps / 100 burst bucket).
 */
export function controllerRateLimiter(opts: ControllerRateLimiterOptions = {}): RateLimiter {
  const perKey = new ItemExponentialFailureRateLimiter(opts.baseDelayMs ?? 5, opts.maxDelayMs ?? 1_000_000);
  const qps = opts.qps ?? 10;
  if (qps === 0) return perKey;
  return new MaxOfRateLimiter(perKey, new BucketRateLimiter(qps, opts.burst ?? 100, opts.now));
}

/**
 * Retry delays: exponential backoff with a deterministic jitter.
 *
 * Why deterministic: the engine is a pure function, so the spread that keeps
 * many retrying transactions from hammering a participant in lock-step comes
 * from a hash of (transaction uid, branch, method, attempt) instead of
 * Math.random. The same inputs always give the same delay, which makes steps
 * reproducible and tests exact.
 */
import type { BranchSpec, RetryPolicy, TransactionSpec } from '../api/types.js';
import { DEFAULTS, parseDuration, parseDurationField } from './duration.js';

/** A retry policy with every field filled in and durations in milliseconds. */
export interface ResolvedRetryPolicy {
  initialIntervalMs: number;
  maxIntervalMs: number;
  multiplier: number;
  /** 0 = no limit. */
  maxAttempts: number;
}

/**
 * Floor of every delay, so a "0s" interval cannot make the controller call a
 * failing participant in a tight loop inside one reconcile.
 */
export const MIN_DELAY_MS = 100;

/**
 * merge(defaults, spec.retry, branch.retry), field by field: the most specific
 * value that is set wins. Throws an Error naming the offending field(s).
 */
export function effectiveRetryPolicy(
  spec: Pick<TransactionSpec, 'retry'> | undefined,
  branch?: Pick<BranchSpec, 'name' | 'retry'>,
): ResolvedRetryPolicy {
  const layers: Array<{ path: string; retry: RetryPolicy | undefined }> = [
    { path: `spec.branches[${branch?.name ?? '?'}].retry`, retry: branch?.retry },
    { path: 'spec.retry', retry: spec?.retry },
  ];
  const pick = <K extends keyof RetryPolicy>(key: K): { path: string; value: RetryPolicy[K] } => {
    for (const layer of layers) {
      const value = layer.retry?.[key];
      if (value !== undefined && value !== null) return { path: `${layer.path}.${key}`, value };
    }
    return { path: `default ${key}`, value: DEFAULTS.retry[key] as RetryPolicy[K] };
  };

  const errors: string[] = [];
  const duration = (key: 'initialInterval' | 'maxInterval', fallback: string): number => {
    const { path, value } = pick(key);
    try {
      // "" counts as unset, like an absent field.
      return parseDurationField(value, parseDuration(fallback), path);
    } catch (err) {
      errors.push((err as Error).message);
      return 0;
    }
  };
  const initialIntervalMs = duration('initialInterval', DEFAULTS.retry.initialInterval);
  const maxIntervalMs = duration('maxInterval', DEFAULTS.retry.maxInterval);

  const mult = pick('multiplier');
  if (typeof mult.value !== 'number' || !Number.isFinite(mult.value) || mult.value < 1) {
    errors.push(`${mult.path}: must be a number ≥ 1, got ${JSON.stringify(mult.value)}`);
  }
  const max = pick('maxAttempts');
  if (typeof max.value !== 'number' || !Number.isInteger(max.value) || max.value < 0) {
    errors.push(`${max.path}: must be a whole number ≥ 0, got ${JSON.stringify(max.value)}`);
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
  return { initialIntervalMs, maxIntervalMs, multiplier: mult.value as number, maxAttempts: max.value as number };
}

/** The policy used when the spec's own is unusable (engine code must not throw). */
export function defaultRetryPolicy(): ResolvedRetryPolicy {
  return effectiveRetryPolicy(undefined);
}

/** Un-jittered delay before attempt n+1 after attempt n failed: min(maxInterval, initial × multiplier^(n−1)). */
export function baseDelayMs(policy: ResolvedRetryPolicy, attempt: number): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const grown = policy.initialIntervalMs * Math.pow(policy.multiplier, n - 1);
  // pow overflows to Infinity for large n; maxInterval caps it either way.
  return Number.isFinite(grown) ? Math.min(policy.maxIntervalMs, grown) : policy.maxIntervalMs;
}

export interface JitterKey {
  uid: string;
  branch: string;
  method: string;
  attempt: number;
}

/** A fraction in [0, 1) fixed by the key: FNV-1a 32-bit, then murmur3's finalizer to spread nearby keys. */
export function jitterFraction(key: JitterKey): number {
  const text = `${key.uid}\u0000${key.branch}\u0000${key.method}\u0000${key.attempt}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** Delay in whole ms before the next attempt: the base delay scaled into [0.5, 1.0) by the key's jitter, at least MIN_DELAY_MS. */
export function retryDelayMs(policy: ResolvedRetryPolicy, key: JitterKey): number {
  const base = baseDelayMs(policy, key.attempt);
  return Math.max(MIN_DELAY_MS, Math.round(base * (0.5 + 0.5 * jitterFraction(key))));
}

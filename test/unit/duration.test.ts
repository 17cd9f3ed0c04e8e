import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEFAULTS, formatDuration, parseDuration, parseDurationField } from '../../src/engine/duration.js';
import {
  MIN_DELAY_MS,
  baseDelayMs,
  effectiveRetryPolicy,
  jitterFraction,
  retryDelayMs,
} from '../../src/engine/backoff.js';
import { setCondition } from '../../src/engine/conditions.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['5s', 5_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['0', 0],
    ['0s', 0],
    ['+2m', 120_000],
    ['1h2m3s4ms', 3_723_004],
    ['1500us', 2],
    ['1000000ns', 1],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '5', 's', '1d', '1 s', ' 1s', '1s ', '-1s', '1.2.3s', 'abc', '1m30', '30S', '1e3s'])(
    'rejects %j with an error naming the value',
    (text) => {
      expect(() => parseDuration(text)).toThrowError(new RegExp(`invalid duration "${text.replace(/[.+*]/g, '\\$&')}"`));
    },
  );

  it('rejects non-strings naming the value and its type', () => {
    expect(() => parseDuration(30)).toThrowError(/invalid duration 30 \(number\)/);
    expect(() => parseDuration(null)).toThrowError(/invalid duration null/);
  });

  it('parseDurationField defaults when unset and names the field when bad', () => {
    expect(parseDurationField(undefined, 42, 'spec.timeout')).toBe(42);
    expect(parseDurationField('', 42, 'spec.timeout')).toBe(42);
    expect(parseDurationField('2s', 42, 'spec.timeout')).toBe(2000);
    expect(() => parseDurationField('2 s', 42, 'spec.timeout')).toThrowError(/^spec\.timeout: invalid duration "2 s"/);
  });

  it('formatDuration round-trips through parseDuration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(3_600_000)).toBe('1h');
  });

  it('exports the documented defaults', () => {
    expect(DEFAULTS).toEqual({
      timeout: '30s',
      callTimeout: '5s',
      retry: { initialInterval: '1s', maxInterval: '5m', multiplier: 2, maxAttempts: 0 },
    });
  });
});

describe('backoff', () => {
  const policy = effectiveRetryPolicy({});

  it('defaults: 1s doubling, capped at 5m, no attempt limit', () => {
    expect(policy).toEqual({ initialIntervalMs: 1000, maxIntervalMs: 300_000, multiplier: 2, maxAttempts: 0 });
    expect([1, 2, 3, 4].map((n) => baseDelayMs(policy, n))).toEqual([1000, 2000, 4000, 8000]);
    expect(baseDelayMs(policy, 20)).toBe(300_000);
    expect(baseDelayMs(policy, 5000)).toBe(300_000); // pow overflow is capped too
  });

  it('merges defaults < spec.retry < branch.retry field by field', () => {
    const p = effectiveRetryPolicy(
      { retry: { initialInterval: '2s', maxAttempts: 5 } },
      { name: 'a', retry: { maxAttempts: 3, multiplier: 3 } },
    );
    expect(p).toEqual({ initialIntervalMs: 2000, maxIntervalMs: 300_000, multiplier: 3, maxAttempts: 3 });
  });

  it('names the bad field', () => {
    expect(() => effectiveRetryPolicy({ retry: { initialInterval: 'soon' } })).toThrowError(
      /spec\.retry\.initialInterval: invalid duration "soon"/,
    );
    expect(() => effectiveRetryPolicy({}, { name: 'credit', retry: { multiplier: 0.5 } })).toThrowError(
      /spec\.branches\[credit\]\.retry\.multiplier: must be a number ≥ 1/,
    );
    expect(() => effectiveRetryPolicy({ retry: { maxAttempts: -1 } })).toThrowError(/spec\.retry\.maxAttempts/);
  });

  it('jittered delay is deterministic and within [0.5, 1] of the base delay (floored at MIN_DELAY_MS)', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.constantFrom('Try', 'Confirm', 'Cancel'),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 600_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        (uid, branch, method, attempt, initialIntervalMs, maxIntervalMs, multiplier) => {
          const p = { initialIntervalMs, maxIntervalMs, multiplier, maxAttempts: 0 };
          const key = { uid, branch, method, attempt };
          const f = jitterFraction(key);
          expect(f).toBeGreaterThanOrEqual(0);
          expect(f).toBeLessThan(1);
          const d = retryDelayMs(p, key);
          expect(retryDelayMs(p, { ...key })).toBe(d);
          const base = baseDelayMs(p, attempt);
          expect(d).toBeGreaterThanOrEqual(Math.max(MIN_DELAY_MS, Math.floor(base * 0.5)));
          expect(d).toBeLessThanOrEqual(Math.max(MIN_DELAY_MS, Math.ceil(base)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('jitter spreads different keys', () => {
    const fractions = Array.from({ length: 200 }, (_, i) => jitterFraction({ uid: 'u', branch: `b${i}`, method: 'Confirm', attempt: 1 }));
    const buckets = [0, 0, 0, 0];
    for (const f of fractions) buckets[Math.floor(f * 4)]! += 1;
    for (const n of buckets) expect(n).toBeGreaterThan(20);
  });
});

describe('setCondition', () => {
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  it('keeps lastTransitionTime unless status changes', () => {
    const a = setCondition(undefined, { type: 'Succeeded', status: 'Unknown', reason: 'Trying', message: 'm' }, t0);
    expect(a).toEqual([{ type: 'Succeeded', status: 'Unknown', reason: 'Trying', message: 'm', lastTransitionTime: '2025-01-01T00:00:00.000Z' }]);
    const b = setCondition(a, { type: 'Succeeded', status: 'Unknown', reason: 'Confirming', message: 'n' }, t0 + 5000);
    expect(b[0]).toMatchObject({ reason: 'Confirming', message: 'n', lastTransitionTime: '2025-01-01T00:00:00.000Z' });
    const c = setCondition(b, { type: 'Succeeded', status: 'True', reason: 'Committed', message: 'ok' }, t0 + 9000);
    expect(c[0]!.lastTransitionTime).toBe('2025-01-01T00:00:09.000Z');
    expect(a[0]!.reason).toBe('Trying'); // input untouched
  });
  it('leaves other condition types alone', () => {
    const other = { type: 'Ready', status: 'True' as const, reason: 'x', message: '', lastTransitionTime: 'T' };
    const out = setCondition([other], { type: 'Succeeded', status: 'Unknown', reason: 'Trying', message: '' }, t0);
    expect(out).toHaveLength(2);
    expect(out[0]).toBe(other);
  });
});

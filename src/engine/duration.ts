/**
 * Go-style durations ("250ms", "5s", "1m30s", "24h") as written in the spec.
 *
 * Why Go syntax: it is what every other Kubernetes API uses for durations, so
 * users already know it. Parsing is strict (no spaces, no negative values, no
 * bare numbers except "0") so a typo fails loudly instead of meaning something.
 */
import type { RetryPolicy } from '../api/types.js';

/** The spec's defaults, in the spec's own form (docs/api-reference.md names the same values). */
export const DEFAULTS = {
  timeout: '30s',
  callTimeout: '5s',
  retry: { initialInterval: '1s', maxInterval: '5m', multiplier: 2, maxAttempts: 0 },
} as const satisfies { timeout: string; callTimeout: string; retry: Required<RetryPolicy> };

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

/**
 * Floors of the spec's durations, the same minimums the CRD's CEL rules
 * enforce (docs/api-reference.md). The engine applies them too, so objects
 * stored before the rules existed cannot abort at once (timeout), cancel every
 * call (callTimeout) or ask the message source in a tight loop (checkAfter).
 */
export const MIN_TIMEOUT_MS = 1_000;
export const MIN_CALL_TIMEOUT_MS = 10;
export const MIN_CHECK_AFTER_MS = 1_000;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign, as Go accepts
  μs: 1e-3, // U+03BC greek mu, as Go accepts
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

// Longer units first so "ms" is not read as "m" followed by garbage.
const TOKEN = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

const HINT = 'expected a number with a unit (ns, us, ms, s, m, h), e.g. "250ms", "30s", "1m30s"';

/** Milliseconds in a Go-style duration, rounded to a whole millisecond. Throws an Error naming the bad value. */
export function parseDuration(value: unknown): number {
  if (typeof value !== 'string') {
    throw new Error(`invalid duration ${describe(value)}: ${HINT}`);
  }
  if (value === '0') return 0;
  let s = value;
  if (s.startsWith('+')) s = s.slice(1);
  if (s.startsWith('-')) throw new Error(`invalid duration "${value}": must not be negative`);
  if (s === '') throw new Error(`invalid duration "${value}": ${HINT}`);
  let total = 0;
  let i = 0;
  while (i < s.length) {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(s);
    if (!m) throw new Error(`invalid duration "${value}": ${HINT}`);
    total += Number.parseFloat(m[1]!) * UNIT_MS[m[2]!]!;
    i = TOKEN.lastIndex;
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) {
    throw new Error(`invalid duration "${value}": too large`);
  }
  return Math.round(total);
}

/**
 * Parses an optional spec field: undefined or "" gives the default; a bad value
 * throws an Error that names the field, so status messages point at what to fix.
 */
export function parseDurationField(value: unknown, defaultMs: number, field: string): number {
  if (value === undefined || value === null || value === '') return defaultMs;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new Error(`${field}: ${(err as Error).message}`);
  }
}

/** Short human form for messages: 90000 → "1m30s", 1500 → "1.5s", 250 → "250ms". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  let out = '';
  if (h > 0) out += `${h}h`;
  if (m > 0) out += `${m}m`;
  if (s > 0) out += `${Number(s.toFixed(3))}s`;
  return out;
}

function describe(value: unknown): string {
  try {
    return `${JSON.stringify(value) ?? String(value)} (${typeof value})`;
  } catch {
    return typeof value;
  }
}

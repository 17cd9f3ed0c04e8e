/**
 * The spec's settings resolved once per step, with defaults applied.
 *
 * Why it never throws: a step must always return a status. Bad values are
 * collected in `errors` (each naming its field) and replaced by defaults; the
 * state machine decides what an invalid spec means for it (fail before any
 * call, or carry an existing decision through).
 */
import type { BranchSpec, DistributedTransaction } from '../api/types.js';
import { defaultRetryPolicy, effectiveRetryPolicy, type ResolvedRetryPolicy } from './backoff.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, MIN_CALL_TIMEOUT_MS, MIN_TIMEOUT_MS, formatDuration, parseDuration, parseDurationField } from './duration.js';

export interface ResolvedBranch {
  name: string;
  spec: BranchSpec;
  retry: ResolvedRetryPolicy;
  callTimeoutMs: number;
}

export interface ResolvedConfig {
  timeoutMs: number;
  /** The timeout as the user wrote it (for messages). */
  timeoutText: string;
  /** Spec order, names unique (a duplicate is reported in errors and dropped). */
  branches: ResolvedBranch[];
  errors: string[];
}

export function resolveConfig(tx: DistributedTransaction): ResolvedConfig {
  const errors: string[] = [];
  const spec = tx?.spec;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  try {
    timeoutMs = Math.max(MIN_TIMEOUT_MS, parseDurationField(spec?.timeout, DEFAULT_TIMEOUT_MS, 'spec.timeout'));
  } catch (err) {
    errors.push((err as Error).message);
  }
  const timeoutText =
    typeof spec?.timeout === 'string' && spec.timeout !== '' && errors.length === 0 && parseDuration(spec.timeout) >= MIN_TIMEOUT_MS
      ? spec.timeout
      : formatDuration(timeoutMs);

  const list: unknown[] = Array.isArray(spec?.branches) ? spec.branches : [];
  if (list.length === 0) errors.push('spec.branches: at least one branch is required');
  const branches: ResolvedBranch[] = [];
  const seen = new Set<string>();
  list.forEach((raw, i) => {
    const b = raw as BranchSpec;
    if (!b || typeof b !== 'object' || typeof b.name !== 'string' || b.name === '') {
      errors.push(`spec.branches[${i}].name: required`);
      return;
    }
    if (seen.has(b.name)) {
      errors.push(`spec.branches[${i}].name: duplicate name "${b.name}"`);
      return;
    }
    seen.add(b.name);
    let retry: ResolvedRetryPolicy;
    try {
      retry = effectiveRetryPolicy(spec, b);
    } catch (err) {
      errors.push((err as Error).message);
      retry = defaultRetryPolicy();
    }
    let callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS;
    try {
      callTimeoutMs = Math.max(MIN_CALL_TIMEOUT_MS, parseDurationField(b.callTimeout, DEFAULT_CALL_TIMEOUT_MS, `spec.branches[${b.name}].callTimeout`));
    } catch (err) {
      errors.push((err as Error).message);
    }
    branches.push({ name: b.name, spec: b, retry, callTimeoutMs });
  });
  // The same spec.retry error would otherwise be reported once per branch.
  return { timeoutMs, timeoutText, branches, errors: [...new Set(errors)] };
}

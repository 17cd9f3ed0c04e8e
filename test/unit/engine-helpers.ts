/** Builders shared by the engine tests. */
import type { DistributedTransaction, RetryPolicy, TransactionSpec } from '../../src/api/types.js';
import type { Call, CallOutcome, OutcomeKind } from '../../src/engine/types.js';

export const T0 = Date.parse('2025-03-01T12:00:00.000Z');

export function makeTx(
  names: string[],
  opts: { timeout?: string; retry?: RetryPolicy; mode?: TransactionSpec['mode']; uid?: string; created?: number } = {},
): DistributedTransaction {
  const spec: TransactionSpec = {
    mode: opts.mode ?? 'TCC',
    branches: names.map((name) => ({ name, endpoint: { service: { name, port: 50051 } }, operation: 'op' })),
  };
  if (opts.timeout) spec.timeout = opts.timeout;
  if (opts.retry) spec.retry = opts.retry;
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: {
      name: 'tx',
      namespace: 'shop',
      uid: opts.uid ?? 'uid-1',
      generation: 1,
      creationTimestamp: new Date(opts.created ?? T0).toISOString(),
    },
    spec,
  };
}

/** The outcome of `call` (attempt and method copied from it). */
export function outcome(call: Call, kind: OutcomeKind, finishedAt: number, extra: Partial<CallOutcome> = {}): CallOutcome {
  return { branch: call.branch, method: call.method, attempt: call.attempt, kind, finishedAt, ...extra };
}

/**
 * The outcomes a simulated controller hands the next step: the fresh answers,
 * plus, when the generated `s` says so (0: before, 1 or 2: after), one old
 * answer from `history` (an earlier step's, or a crashed run's).
 */
export function withStale(fresh: CallOutcome[], s: number | undefined, history: CallOutcome[]): CallOutcome[] {
  const outcomes = [...fresh];
  if (s !== undefined && s < 3 && history.length > 0) {
    const old = history[(s * 7919 + history.length) % history.length]!;
    if (s === 0) outcomes.unshift(old);
    else outcomes.push(old);
  }
  return outcomes;
}

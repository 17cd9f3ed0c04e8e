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

/** Builders for the Saga engine tests. */
import type { DistributedTransaction, RetryPolicy } from '../../src/api/types.js';
import { makeTx } from './engine-helpers.js';

/** A Saga over `deps` (branch → the branches it depends on), in key order. */
export function sagaTx(
  deps: Record<string, string[]>,
  opts: { timeout?: string; retry?: RetryPolicy; uid?: string; annotations?: Record<string, string> } = {},
): DistributedTransaction {
  const tx = makeTx(Object.keys(deps), { ...opts, mode: 'Saga' });
  for (const b of tx.spec.branches) if (deps[b.name]!.length > 0) b.dependsOn = [...deps[b.name]!];
  if (opts.annotations) tx.metadata.annotations = { ...opts.annotations };
  return tx;
}

export const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * What the operator keeps in memory of a transaction.
 *
 * The informer cache holds every DistributedTransaction in the cluster, for
 * every tenant. Kept whole, 200 transactions of 1.2 MB took the operator to
 * 1.15 GiB while it listed them at start, past the chart's 512 MiB limit: a
 * crash loop for everyone. So every object entering the cache (and every
 * object the operator gets back from its own writes) is slimmed in place:
 *
 *   - `metadata.managedFields` and kubectl's last-applied annotation (a second
 *     copy of the spec) are dropped;
 *   - payloads are dropped when their total is over KEEP_PAYLOAD_BYTES; the
 *     calls that need them read the live object (payload-source.ts).
 *
 * What the spec checks need from the payloads (sizes, nesting depth) is
 * measured first — iteratively, so a payload nested 5,000 levels deep cannot
 * overflow the stack — and kept with the spec.
 */
import type { DistributedTransaction } from '../api/types.js';

/** Payloads up to this total stay in the cache: the common case makes no extra read before its calls. */
export const KEEP_PAYLOAD_BYTES = 2048;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface PayloadField {
  field: string;
  /** Bytes of its JSON; undefined when too deep to measure safely. */
  bytes?: number;
  depth: number;
}

export interface PayloadSummary {
  fields: PayloadField[];
  /** Sum of the measured fields' bytes. */
  totalBytes: number;
  /** The payloads are not in this object: read the live one before calling. */
  stripped: boolean;
}

const SUMMARY = Symbol('kubetx.payloadSummary');
type WithSummary = { [SUMMARY]?: PayloadSummary };

/** Payloads deeper than this are not stringified (that would recurse) nor sent: the spec check refuses them. */
export const MAX_PAYLOAD_DEPTH = 32;

/** Nesting depth of a JSON value, without recursion (a scalar is 0, {} or [] is 1). */
export function jsonDepth(value: unknown, stopAt = Number.POSITIVE_INFINITY): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (max > stopAt) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([child, depth]);
  }
  return max;
}

/** Measures the payload fields of a transaction as it came from the API server. */
export function measurePayloads(tx: DistributedTransaction): PayloadSummary {
  const fields: PayloadField[] = [];
  const spec = tx.spec ?? ({} as DistributedTransaction['spec']);
  const candidates: Array<[string, unknown]> = [['spec.payload', spec.payload]];
  const branches = Array.isArray(spec.branches) ? spec.branches : [];
  branches.forEach((b, i) => candidates.push([`spec.branches[${i}].payload`, b?.payload]));
  let totalBytes = 0;
  for (const [field, value] of candidates) {
    if (value === undefined) continue;
    const depth = jsonDepth(value, MAX_PAYLOAD_DEPTH);
    const bytes = depth > MAX_PAYLOAD_DEPTH ? undefined : Buffer.byteLength(JSON.stringify(value));
    totalBytes += bytes ?? 0;
    fields.push({ field, bytes, depth });
  }
  return { fields, totalBytes, stripped: false };
}

/** The summary kept with a (possibly slimmed) transaction; measured now when it has none. */
export function payloadSummary(tx: DistributedTransaction): PayloadSummary {
  return (tx.spec as WithSummary | undefined)?.[SUMMARY] ?? measurePayloads(tx);
}

export function payloadsStripped(tx: DistributedTransaction): boolean {
  return (tx.spec as WithSummary | undefined)?.[SUMMARY]?.stripped === true;
}

/** Slims `obj` in place for the cache and returns it. */
export function slimForCache<T>(obj: T): T {
  const tx = obj as unknown as DistributedTransaction;
  if (!tx || typeof tx !== 'object' || !tx.metadata) return obj;
  const meta = tx.metadata as DistributedTransaction['metadata'] & { managedFields?: unknown };
  delete meta.managedFields;
  if (meta.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _dropped, ...rest } = meta.annotations;
    meta.annotations = rest;
  }
  const spec = tx.spec as (DistributedTransaction['spec'] & WithSummary) | undefined;
  if (!spec || typeof spec !== 'object' || spec[SUMMARY]) return obj;
  const summary = measurePayloads(tx);
  const tooDeep = summary.fields.some((f) => f.bytes === undefined);
  if (summary.totalBytes > KEEP_PAYLOAD_BYTES || tooDeep) {
    delete spec.payload;
    for (const b of Array.isArray(spec.branches) ? spec.branches : []) if (b && typeof b === 'object') delete b.payload;
    summary.stripped = true;
  }
  Object.defineProperty(spec, SUMMARY, { value: summary, enumerable: false });
  return obj;
}

/**
 * The timing base of spec.timeout and spec.message.checkAfter.
 *
 * metadata.creationTimestamp has one-second precision: the API server
 * truncates it, so a transaction created at x.900 s reads as x.000 s. Counting
 * a 1 s timeout from that aborted it 99 ms after it was created, and counting
 * checkAfter from it checked back up to a second early — early enough to roll
 * back an upstream whose local transaction was merely slow.
 *
 * The real creation instant lies in [creationTimestamp, creationTimestamp + 1 s)
 * and is no later than the first moment the operator sees the object. The
 * earlier of those two bounds is therefore never before the real creation, and
 * at most one second after it: deadlines counted from it are never early and
 * at most a second late. It is recorded, with millisecond precision, as
 * status.startTime at the first status write (which happens anyway), and from
 * then on every step — and every operator replica — counts from that record.
 */
import type { DistributedTransaction, TransactionStatus } from '../api/types.js';
import { iso, parseTime, validTime } from './text.js';

/** creationTimestamp's precision: the real creation is at most this much after it. */
export const CREATION_TIMESTAMP_PRECISION_MS = 1000;

/** status.startTime as recorded, or the conservative base for a transaction whose status has none yet. */
export function startTimeOf(prev: TransactionStatus | undefined, tx: DistributedTransaction | undefined, now: number): string {
  const created = tx?.metadata?.creationTimestamp;
  const stored = validTime(prev?.startTime);
  // An older operator recorded the truncated creationTimestamp itself ("…:05Z", no fraction): not a precise start.
  if (stored && !(stored === created && !/\.\d/.test(stored))) return stored;
  return iso(conservativeStart(created, now));
}

/** ms since epoch: min(creationTimestamp + 1 s, now), or now when the timestamp is unreadable. */
export function conservativeStart(creationTimestamp: string | undefined, now: number): number {
  const created = parseTime(creationTimestamp);
  if (created === undefined) return now;
  return Math.min(created + CREATION_TIMESTAMP_PRECISION_MS, Math.max(created, now));
}

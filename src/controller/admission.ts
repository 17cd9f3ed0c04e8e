/**
 * Peak shaving (--max-forward-transactions): a transaction that has not
 * started yet begins its forward phase (TCC Trying, Saga Executing) only while
 * fewer than `max` transactions are in theirs. Message and Notify transactions
 * are not limited.
 *
 * The count is derived, not kept: transactions the informer cache shows in
 * their forward phase (so it survives restarts and counts what another
 * replica started), plus those this process admitted whose started status the
 * cache has not shown yet (a reconcile may run the whole forward phase before
 * the cache sees anything).
 *
 * A waiting transaction's forward timeout keeps running (it counts from
 * creation): one that waits past it is let through so the engine times it out
 * and cancels it — the user's deadline is honoured rather than stretched.
 */
import type { DistributedTransaction } from '../api/types.js';

export type Admission = { admitted: true } | { admitted: false; inForward: number; max: number };

const limitedModes = new Set(['TCC', 'Saga']);
const forwardPhases = new Set(['Trying', 'Executing']);
/** An admitted transaction the cache never shows started (deleted, lost writes) stops counting after this long. */
const admittedTtlMs = 60_000;

/** No status yet, or Pending with no decision and no branch attempted. */
export function notStarted(tx: DistributedTransaction): boolean {
  const s = tx.status;
  if (!s) return true;
  if (s.phase !== undefined && s.phase !== 'Pending') return false;
  if (s.decision) return false;
  return !(s.branches ?? []).some((b) => (b.attempts ?? 0) > 0);
}

export function inForwardPhase(tx: DistributedTransaction): boolean {
  return limitedModes.has(tx.spec?.mode) && !tx.status?.decision && forwardPhases.has(tx.status?.phase ?? '');
}

export class ForwardAdmission {
  /** uid → when this process admitted it. */
  private readonly admitted = new Map<string, number>();

  constructor(
    readonly max: number,
    /** Every transaction in the informer cache. */
    private readonly cached: () => Iterable<DistributedTransaction>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the limit applies to this transaction now (a limited mode that has not started). */
  applies(tx: DistributedTransaction): boolean {
    return this.max > 0 && limitedModes.has(tx.spec.mode) && notStarted(tx);
  }

  admit(tx: DistributedTransaction): Admission {
    const uid = tx.metadata.uid;
    if (this.admitted.has(uid)) return { admitted: true };
    const inForward = this.count();
    if (inForward >= this.max) return { admitted: false, inForward, max: this.max };
    this.admitted.set(uid, this.now());
    return { admitted: true };
  }

  /** Transactions the cache shows held back (Pending, reason WaitingForCapacity), for the flow-control gauge. */
  waiting(): number {
    let n = 0;
    for (const tx of this.cached()) {
      if (!this.applies(tx) || tx.status?.phase !== 'Pending') continue;
      if (tx.status.conditions?.some((c) => c.type === 'Succeeded' && c.reason === 'WaitingForCapacity')) n++;
    }
    return n;
  }

  /** Transactions in their forward phase: the cache's, plus our admissions the cache has not shown started. */
  count(): number {
    const now = this.now();
    let n = 0;
    for (const tx of this.cached()) {
      const uid = tx.metadata?.uid;
      if (uid && this.admitted.has(uid) && !notStarted(tx)) this.admitted.delete(uid);
      if (inForwardPhase(tx)) n++;
    }
    for (const [uid, at] of this.admitted) {
      if (now - at > admittedTtlMs) this.admitted.delete(uid);
      else n++;
    }
    return n;
  }
}

/** When the forward phase times out (creation + spec.timeout, default 30s); undefined when unknowable (the engine decides). */
export function forwardDeadline(tx: DistributedTransaction, parseDuration: (d: string) => number): number | undefined {
  const created = Date.parse(tx.metadata.creationTimestamp ?? '');
  if (Number.isNaN(created)) return undefined;
  try {
    return created + parseDuration(tx.spec.timeout ?? '30s');
  } catch {
    return undefined;
  }
}

/** How long a transaction waits before asking again: 500–1000 ms, never past its forward deadline. */
export function waitMs(deadline: number | undefined, now: number, random: () => number = Math.random): number {
  const ms = 500 + Math.floor(random() * 500);
  return deadline === undefined ? ms : Math.max(0, Math.min(ms, deadline - now));
}

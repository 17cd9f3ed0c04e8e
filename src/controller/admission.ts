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
 * Shared fairly between namespaces: while other namespaces have transactions
 * waiting, a namespace already holding its share (max ÷ the namespaces that
 * are running or waiting, at least 1) is not admitted more, so the slots that
 * free up go to the others; with nobody else waiting it may use them all.
 * A tenant that submits a thousand transactions at once therefore delays
 * another's by at most the time for one slot to free up.
 *
 * A waiting transaction's forward timeout keeps running (it counts from
 * creation): one that waits past it is let through so the engine times it out
 * and cancels it — the user's deadline is honoured rather than stretched.
 */
import { startTimeOf } from '../engine/start-time.js';
import type { DistributedTransaction } from '../api/types.js';

export type Admission = { admitted: true } | { admitted: false; inForward: number; max: number; share?: number };

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
  /** uid → when this process admitted it, and in which namespace. */
  private readonly admitted = new Map<string, { at: number; namespace: string }>();

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
    const { total, byNamespace, waitingIn } = this.census();
    if (total >= this.max) return { admitted: false, inForward: total, max: this.max };
    const ns = tx.metadata.namespace;
    const active = new Set([...byNamespace.keys(), ...waitingIn, ns]);
    const share = Math.max(1, Math.floor(this.max / active.size));
    const mine = byNamespace.get(ns) ?? 0;
    // Over its share, a namespace yields while another below its share is waiting.
    const othersBelowShare = [...waitingIn].some((other) => other !== ns && (byNamespace.get(other) ?? 0) < share);
    if (mine >= share && othersBelowShare) return { admitted: false, inForward: total, max: this.max, share };
    this.admitted.set(uid, { at: this.now(), namespace: ns });
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
    return this.census().total;
  }

  /** Forward-phase counts, in all and per namespace, and the namespaces with transactions waiting to start. */
  private census(): { total: number; byNamespace: Map<string, number>; waitingIn: Set<string> } {
    const now = this.now();
    const byNamespace = new Map<string, number>();
    const waitingIn = new Set<string>();
    let total = 0;
    const countIn = (ns: string) => {
      total++;
      byNamespace.set(ns, (byNamespace.get(ns) ?? 0) + 1);
    };
    for (const tx of this.cached()) {
      const uid = tx.metadata?.uid;
      const ns = tx.metadata?.namespace ?? '';
      if (uid && this.admitted.has(uid) && !notStarted(tx)) this.admitted.delete(uid);
      if (inForwardPhase(tx)) countIn(ns);
      else if (uid && !this.admitted.has(uid) && this.applies(tx)) waitingIn.add(ns);
    }
    for (const [uid, a] of this.admitted) {
      if (now - a.at > admittedTtlMs) this.admitted.delete(uid);
      else countIn(a.namespace);
    }
    return { total, byNamespace, waitingIn };
  }
}

/** When the forward phase times out (status.startTime + spec.timeout, default 30s, as the engine counts it); undefined when unknowable (the engine decides). */
export function forwardDeadline(tx: DistributedTransaction, parseDuration: (d: string) => number, now: number): number | undefined {
  const created = Date.parse(startTimeOf(tx.status, tx, now));
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

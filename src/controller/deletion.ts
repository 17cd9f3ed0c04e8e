/**
 * Deleting a transaction that is still running must not lose it.
 *
 * Without a finalizer, `kubectl delete` (or deleting the namespace) of a
 * Confirming transaction removed the object at once: the Confirms stopped,
 * some participants kept their reservations forever, and the audit trail was
 * gone. So a TCC, Saga or Message transaction carries the finalizer
 * `kubetx.io/finalizer` from its first reconcile until it has finished:
 *
 *   - deleted before it decided: it is decided as if aborted (Cancel /
 *     Compensate / Rollback) and driven to its end, then removed;
 *   - deleted after it decided: the decision is carried out, then removed;
 *   - finished or Failed (a human's case already): removed at once;
 *   - `kubetx.io/force-delete: "true"`: removed at once, whatever its phase,
 *     with a Warning Event — for a namespace whose participants are gone.
 *
 * On removal the operator records the final status (an Event and a log line),
 * the last trace of the transaction in the cluster. Notify transactions get no
 * finalizer: best effort has nothing to undo, and deleting one stops it.
 */
import type { BranchStatus, DistributedTransaction } from '../api/types.js';
import { ABORT_ANNOTATION, ackValue } from '../engine/intervention.js';
import { terminalPhases } from './phases.js';

export const FINALIZER = 'kubetx.io/finalizer';
export const FORCE_DELETE_ANNOTATION = 'kubetx.io/force-delete';

const hasFinalizer = (tx: DistributedTransaction) => (tx.metadata.finalizers ?? []).includes(FINALIZER);

/** A running transaction that deletion would orphan, not yet protected. */
export function needsFinalizer(tx: DistributedTransaction): boolean {
  if (tx.metadata.deletionTimestamp || hasFinalizer(tx)) return false;
  if (tx.spec?.mode === 'Notify') return false;
  return !terminalPhases.has(tx.status?.phase ?? '');
}

export type DeletionAction =
  /** Not ours to hold (no finalizer): nothing to do. */
  | { kind: 'ignore' }
  /** Remove the finalizer now and record the final status. */
  | { kind: 'release'; forced: boolean }
  /** Keep it, and drive the transaction to its end (as aborted when undecided). */
  | { kind: 'finish'; tx: DistributedTransaction };

export function onDeletion(tx: DistributedTransaction): DeletionAction {
  if (!hasFinalizer(tx)) return { kind: 'ignore' };
  const forced = tx.metadata.annotations?.[FORCE_DELETE_ANNOTATION] === 'true';
  if (forced || tx.spec?.mode === 'Notify' || terminalPhases.has(tx.status?.phase ?? '')) return { kind: 'release', forced };
  if (tx.status?.decision) return { kind: 'finish', tx };
  return { kind: 'finish', tx: withDeletionAbort(tx) };
}

/**
 * The transaction as the engine should see it: an undecided one carries an
 * abort request named after its deletion (unless a human's abort is already
 * pending), so the engine decides it the way `kubectl dtx abort` would. The
 * value is the same on every reconcile, so it is acted on once.
 */
function withDeletionAbort(tx: DistributedTransaction): DistributedTransaction {
  const annotations = tx.metadata.annotations ?? {};
  const pending = annotations[ABORT_ANNOTATION] && ackValue(annotations[ABORT_ANNOTATION]) !== tx.status?.abortAcknowledged;
  if (pending) return tx;
  const value = `deleted at ${tx.metadata.deletionTimestamp}`;
  if (tx.status?.abortAcknowledged === ackValue(value)) return tx;
  return { ...tx, metadata: { ...tx.metadata, annotations: { ...annotations, [ABORT_ANNOTATION]: value } } };
}

export function withoutFinalizer(tx: DistributedTransaction): string[] {
  return (tx.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
}

/** "phase Aborted, decision Cancel; order Cancelled, credit Cancelled" — the final record (no payloads). */
export function finalRecord(tx: DistributedTransaction): string {
  const s = tx.status ?? {};
  const branches = (s.branches ?? []).map((b: BranchStatus) => `${b.name} ${b.state ?? 'Pending'}`).join(', ');
  return `phase ${s.phase ?? 'Pending'}${s.decision ? `, decision ${s.decision}` : ''}${branches ? `; ${branches}` : ''}`.slice(0, 1024);
}

/**
 * Participant calls in flight, per transaction, off the workers.
 *
 * A reconcile that needs calls starts them here and returns at once, as a
 * controller-runtime reconciler returns and requeues: no worker waits for a
 * participant, so a participant that never answers holds only its own
 * transaction. When every call of the batch has ended, the tracker asks for
 * the key to be reconciled again, and that reconcile takes the outcomes.
 *
 * A batch remembers the status it was started from (`base`: what the server
 * held then) and the engine's status after the step that asked for the calls
 * (`stepStatus`). Its outcomes are used only while the server still holds
 * `base`: if anything else wrote the status meanwhile, the outcomes are
 * dropped and the engine decides again from what is persisted — every call is
 * idempotent, so a dropped outcome costs a repeated call, never a wrong one.
 */
import { setMaxListeners } from 'node:events';
import type { TransactionStatus } from '../api/types.js';
import type { Call, CallOutcome, EventIntent } from '../engine/types.js';

export interface Batch {
  uid: string;
  base: TransactionStatus | undefined;
  stepStatus: TransactionStatus;
  /** Events of steps whose status is not persisted yet: recorded once it is, dropped with the outcomes. */
  events: EventIntent[];
  calls: Call[];
  /** Set once every call has ended. */
  outcomes?: CallOutcome[];
  readonly abort: AbortController;
  startedAt: number;
}

export type CallRunner = (call: Call, signal: AbortSignal) => Promise<CallOutcome>;

export class CallTracker {
  private readonly batches = new Map<string, Batch>();
  /** Told when a batch's calls have all ended (the manager requeues the key). */
  onSettled: (key: string) => void = () => undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Starts `calls` for `key`; a batch still running for the key is cancelled first (cannot happen in the reconciler's use). */
  start(key: string, uid: string, base: TransactionStatus | undefined, stepStatus: TransactionStatus, calls: Call[], run: CallRunner, events: EventIntent[] = []): void {
    this.cancel(key);
    const batch: Batch = { uid, base, stepStatus, events, calls, abort: new AbortController(), startedAt: this.now() };
    // Every call of the batch listens on this one signal, one listener at a time (while it waits for an
    // endpoint slot or a key lane, then while it runs), one call per branch. Past 10 listeners Node
    // prints a MaxListenersExceededWarning for the signal: a stack trace and a stderr line per batch of
    // an 11-branch transaction, which is neither a leak nor cheap. Node's 10 stay as headroom.
    setMaxListeners(10 + calls.length, batch.abort.signal);
    this.batches.set(key, batch);
    void Promise.all(calls.map((c) => run(c, batch.abort.signal))).then(
      (outcomes) => this.settle(key, batch, outcomes),
      // The runner never throws (callParticipant classifies every failure); if it did, drop the batch and decide again.
      () => this.settle(key, batch, undefined),
    );
  }

  /** The key's batch: running (no outcomes yet) or settled. */
  get(key: string): Batch | undefined {
    return this.batches.get(key);
  }

  /** Removes and returns the key's settled batch. */
  take(key: string): Batch | undefined {
    const b = this.batches.get(key);
    if (!b?.outcomes) return undefined;
    this.batches.delete(key);
    return b;
  }

  /** Cancels the key's calls (the transaction was deleted); their outcomes are never used. */
  cancel(key: string): void {
    const b = this.batches.get(key);
    if (!b) return;
    this.batches.delete(key);
    b.abort.abort();
  }

  /** Cancels every call (the operator is stopping). */
  cancelAll(): void {
    for (const key of [...this.batches.keys()]) this.cancel(key);
  }

  /** Batches whose calls are still running. */
  get running(): number {
    let n = 0;
    for (const b of this.batches.values()) if (!b.outcomes) n++;
    return n;
  }

  private settle(key: string, batch: Batch, outcomes: CallOutcome[] | undefined): void {
    if (this.batches.get(key) !== batch) return;
    if (!outcomes) this.batches.delete(key);
    else batch.outcomes = outcomes;
    this.onSettled(key);
  }
}

/**
 * The sub-transaction barrier (after dtm's): exactly-once effects for calls that
 * arrive at-least-once and out of order.
 *
 * Every call is keyed by (transaction uid, branch, method). A barrier row with
 * that key is written in the participant's own database transaction, together
 * with the handler's effect: both commit, or neither does.
 *
 * Rules, applied by `applyBarrierRules` (any implementation must keep them):
 *
 *  1. Repeated call: a row for this (uid, branch, method) exists with origin
 *     'call' → answer OK with the stored message/data, the handler does not run.
 *     A repeated Try therefore returns the same data (e.g. a reservation id).
 *  2. Null compensation: Cancel/Compensate for a branch with no Try/Execute row
 *     → insert a 'blocker' row for Try/Execute and a row for itself, answer OK,
 *     the handler does not run (there is nothing to undo).
 *  3. Anti-hanging: Try/Execute finding its own row with origin 'blocker' (its
 *     Cancel/Compensate came first) → Refused, the handler does not run. The
 *     reservation would otherwise hang forever, since no Cancel will come again.
 *  4. Confirm needs a Try row of origin 'call' and no Cancel row; Cancel needs
 *     no Confirm row. Otherwise the operator broke the protocol → Refused with
 *     FAILED_PRECONDITION (the handler does not run).
 *  5. If the handler throws, nothing is recorded: the same call may come again.
 *  6. Deliver is deduplicated only (rule 1).
 *
 * The store must make concurrent calls for the same key safe. SQLite: one
 * IMMEDIATE transaction (writers are serialized). A server database: the primary
 * key on (uid, branch, method); when two calls race, the loser's insert violates
 * it, its whole transaction (effect included) rolls back, the error is retryable,
 * and its retry is answered by rule 1, 2 or 3.
 */
import { Refused } from './errors.js';

export type BarrierMethod = 'Try' | 'Confirm' | 'Cancel' | 'Execute' | 'Compensate' | 'Deliver';

export const BARRIER_METHODS: readonly BarrierMethod[] = ['Try', 'Confirm', 'Cancel', 'Execute', 'Compensate', 'Deliver'];

/** Which branch a call belongs to; the method is the third part of the key. */
export interface BarrierKey {
  /** metadata.uid of the DistributedTransaction (BranchRequest.transaction_uid). */
  uid: string;
  branch: string;
}

/** What a call answered; stored with its barrier row and replayed on repeats. */
export interface BarrierResponse {
  message: string;
  data: Buffer;
}

/** executed: the handler ran now; duplicate: replayed from the row; null-compensation: rule 2. */
export type BarrierOutcome = 'executed' | 'duplicate' | 'null-compensation';

export interface BarrierResult {
  outcome: BarrierOutcome;
  response: BarrierResponse;
}

/**
 * Runs `handler` at most once per (key, method), inside the participant's own
 * transaction, whose handle (`Tx`) the handler receives and must use for its
 * writes. Throws `Refused` for anti-hanging and protocol violations, and
 * rethrows whatever the handler throws (after rolling back).
 */
export interface Barrier<Tx = unknown> {
  run(
    key: BarrierKey,
    method: BarrierMethod,
    handler: (tx: Tx) => BarrierResponse | Promise<BarrierResponse>,
  ): Promise<BarrierResult>;
}

/** A stored barrier row. `blocker` rows are written by rule 2 for a Try/Execute that never ran. */
export interface BarrierRow {
  origin: 'call' | 'blocker';
  message: string;
  data: Buffer;
}

/** Synchronous row access for one key, used inside the store's transaction. */
export interface BarrierStore {
  get(method: BarrierMethod): BarrierRow | undefined;
  insert(method: BarrierMethod, origin: 'call' | 'blocker', response: BarrierResponse): void;
}

/** The Try/Execute that a Cancel/Compensate undoes or a Confirm completes. */
export function forwardOf(method: BarrierMethod): BarrierMethod | undefined {
  switch (method) {
    case 'Confirm':
    case 'Cancel':
      return 'Try';
    case 'Compensate':
      return 'Execute';
    default:
      return undefined;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The barrier rules over a synchronous store. Call inside one transaction that
 * serializes concurrent calls for the key; commit when it returns, roll back
 * when it throws.
 */
export function applyBarrierRules(
  store: BarrierStore,
  method: BarrierMethod,
  handler: () => BarrierResponse,
): BarrierResult {
  const own = store.get(method);
  if (own) {
    if (own.origin === 'blocker') {
      throw new Refused(`${method} arrived after its ${method === 'Try' ? 'Cancel' : 'Compensate'} (anti-hanging): refused`);
    }
    return { outcome: 'duplicate', response: { message: own.message, data: own.data } };
  }

  if (method === 'Cancel' || method === 'Compensate') {
    const forward = forwardOf(method)!;
    if (!store.get(forward)) {
      const response = { message: `null compensation: no ${forward} had arrived, nothing to undo`, data: EMPTY };
      store.insert(forward, 'blocker', { message: '', data: EMPTY });
      store.insert(method, 'call', response);
      return { outcome: 'null-compensation', response };
    }
    if (method === 'Cancel' && store.get('Confirm')) {
      throw new Refused('Cancel after Confirm: protocol violation', { code: 'FAILED_PRECONDITION' });
    }
  } else if (method === 'Confirm') {
    const tryRow = store.get('Try');
    if (!tryRow || tryRow.origin !== 'call') {
      throw new Refused('Confirm without a successful Try: protocol violation', { code: 'FAILED_PRECONDITION' });
    }
    if (store.get('Cancel')) {
      throw new Refused('Confirm after Cancel: protocol violation', { code: 'FAILED_PRECONDITION' });
    }
  }

  const response = handler();
  store.insert(method, 'call', response);
  return { outcome: 'executed', response };
}

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
 * IMMEDIATE transaction (writers are serialized). PostgreSQL (pg-barrier.ts): the
 * primary key on (uid, branch, method) and INSERT … ON CONFLICT DO NOTHING as
 * the first statement, so an identical concurrent call waits for the first one's
 * transaction and is then answered by rule 1 (see `AsyncBarrierStore.claim`).
 *
 * The rules are written once (`barrierRules`, a generator of store steps) and
 * driven over a synchronous store (`applyBarrierRules`) or an asynchronous one
 * (`applyBarrierRulesAsync`).
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
  /**
   * Inserts a row. Returns `false` when a row for the method already exists
   * (only a store whose concurrent calls are not serialized can see that); any
   * other return value means inserted.
   */
  insert(method: BarrierMethod, origin: 'call' | 'blocker', response: BarrierResponse): boolean | void;
}

/**
 * Asynchronous row access for one key, used inside the store's transaction
 * (server databases). Same contract as `BarrierStore`, plus `claim`.
 */
export interface AsyncBarrierStore {
  /**
   * The first step of every call, for the call's own method: the stored row,
   * or undefined when there is none. A store whose concurrent calls are not
   * serialized takes the key here (e.g. INSERT … ON CONFLICT DO NOTHING of a
   * placeholder row, which makes an identical concurrent call wait until this
   * transaction ends); the later `insert` of the own method then fills that
   * placeholder in. Defaults to `get`.
   */
  claim?(method: BarrierMethod): Promise<BarrierRow | undefined>;
  get(method: BarrierMethod): Promise<BarrierRow | undefined>;
  /** Returns `false` when the row already exists (a concurrent transaction committed it first). */
  insert(method: BarrierMethod, origin: 'call' | 'blocker', response: BarrierResponse): Promise<boolean | void>;
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

/** Default barrier table name (SQLite and PostgreSQL). */
export const DEFAULT_BARRIER_TABLE = 'kubetx_barrier';
/** Default age for `cleanup`: 7 days. */
export const DEFAULT_BARRIER_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * One step the rules ask of a store. The rules are written once, as a
 * generator of steps (`barrierRules`), and driven synchronously
 * (`applyBarrierRules`) or asynchronously (`applyBarrierRulesAsync`).
 */
type RuleStep =
  | { op: 'claim'; method: BarrierMethod }
  | { op: 'get'; method: BarrierMethod }
  | { op: 'insert'; method: BarrierMethod; origin: 'call' | 'blocker'; response: BarrierResponse }
  | { op: 'handler' };

type Rules = Generator<RuleStep, BarrierResult, unknown>;

function* ask<T>(step: RuleStep): Generator<RuleStep, T, unknown> {
  return (yield step) as T;
}
const claimRow = (method: BarrierMethod) => ask<BarrierRow | undefined>({ op: 'claim', method });
const getRow = (method: BarrierMethod) => ask<BarrierRow | undefined>({ op: 'get', method });
const insertRow = (method: BarrierMethod, origin: 'call' | 'blocker', response: BarrierResponse) =>
  ask<boolean | void>({ op: 'insert', method, origin, response });

function* barrierRules(method: BarrierMethod): Rules {
  const own = yield* claimRow(method);
  if (own) {
    if (own.origin === 'blocker') {
      throw new Refused(`${method} arrived after its ${method === 'Try' ? 'Cancel' : 'Compensate'} (anti-hanging): refused`);
    }
    return { outcome: 'duplicate', response: { message: own.message, data: own.data } };
  }

  if (method === 'Cancel' || method === 'Compensate') {
    const forward = forwardOf(method)!;
    if (!(yield* getRow(forward))) {
      const response = { message: `null compensation: no ${forward} had arrived, nothing to undo`, data: EMPTY };
      if ((yield* insertRow(forward, 'blocker', { message: '', data: EMPTY })) !== false) {
        yield* insertRow(method, 'call', response);
        return { outcome: 'null-compensation', response };
      }
      // The Try/Execute was in flight and has committed meanwhile (server
      // stores): it is there now, so this is an ordinary compensation.
      if (!(yield* getRow(forward))) {
        throw new Error(`barrier: the ${forward} row changed concurrently; try again`);
      }
    }
    if (method === 'Cancel' && (yield* getRow('Confirm'))) {
      throw new Refused('Cancel after Confirm: protocol violation', { code: 'FAILED_PRECONDITION' });
    }
  } else if (method === 'Confirm') {
    const tryRow = yield* getRow('Try');
    if (!tryRow || tryRow.origin !== 'call') {
      throw new Refused('Confirm without a successful Try: protocol violation', { code: 'FAILED_PRECONDITION' });
    }
    if (yield* getRow('Cancel')) {
      throw new Refused('Confirm after Cancel: protocol violation', { code: 'FAILED_PRECONDITION' });
    }
  }

  const response = yield* ask<BarrierResponse>({ op: 'handler' });
  if ((yield* insertRow(method, 'call', response)) === false) {
    // Only possible when the store's claim did not take the key.
    throw new Error(`barrier: a concurrent ${method} was recorded first; try again`);
  }
  return { outcome: 'executed', response };
}

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
  const rules = barrierRules(method);
  let step = rules.next();
  while (!step.done) {
    const s = step.value;
    let answer: unknown;
    switch (s.op) {
      case 'claim':
      case 'get':
        answer = store.get(s.method);
        break;
      case 'insert':
        answer = store.insert(s.method, s.origin, s.response);
        break;
      case 'handler':
        answer = handler();
        break;
    }
    step = rules.next(answer);
  }
  return step.value;
}

/**
 * The same rules over an asynchronous store (server databases). Call inside
 * one database transaction; commit when it resolves, roll back when it rejects.
 * See `AsyncBarrierStore.claim` for what makes concurrent calls safe.
 */
export async function applyBarrierRulesAsync(
  store: AsyncBarrierStore,
  method: BarrierMethod,
  handler: () => BarrierResponse | Promise<BarrierResponse>,
): Promise<BarrierResult> {
  const rules = barrierRules(method);
  let step = rules.next();
  while (!step.done) {
    const s = step.value;
    let answer: unknown;
    switch (s.op) {
      case 'claim':
        answer = await (store.claim ? store.claim(s.method) : store.get(s.method));
        break;
      case 'get':
        answer = await store.get(s.method);
        break;
      case 'insert':
        answer = await store.insert(s.method, s.origin, s.response);
        break;
      case 'handler':
        answer = await handler();
        break;
    }
    step = rules.next(answer);
  }
  return step.value;
}

/** Pieces every mode's state machine uses alike. */
import type { BranchState, BranchStatus, BrokerDelivery, Decision, DistributedTransaction, Phase, TransactionStatus } from '../api/types.js';
import { retryDelayMs, type ResolvedRetryPolicy } from './backoff.js';
import { boundedText, iso, parseTime, truncate, validTime } from './text.js';
import type { CallOutcome, EventIntent, Method, OutcomeKind, StepInput, StepOutput } from './types.js';

/** A deep copy to build the next status from; a status that cannot be cloned is used as is (the engine never mutates its input in place). */
export function clone(status: TransactionStatus): TransactionStatus {
  try {
    return structuredClone(status);
  } catch {
    return status;
  }
}

/** A Warning event with bounded text. */
export function warning(reason: string, message: string): EventIntent {
  return { type: 'Warning', reason, message: truncate(message) };
}

/** The mode's finishing phases: one success, the others not. */
export interface Outcomes {
  success: string;
  unsuccessful: readonly string[];
}

/**
 * The Succeeded condition's status and reason for a phase (docs/api-reference.md,
 * Conditions): True on the success phase; False on the others that end it, with
 * the phase as reason, or InvalidSpec when the spec was refused before any call;
 * Unknown while in progress.
 */
export function succeededFor(
  phase: string,
  outcomes: Outcomes,
  refusedSpec: boolean,
): { status: 'True' | 'False' | 'Unknown'; reason: string } {
  if (phase === outcomes.success) return { status: 'True', reason: phase };
  if (phase === 'Failed' && refusedSpec) return { status: 'False', reason: 'InvalidSpec' };
  if (phase === 'Failed' || outcomes.unsuccessful.includes(phase)) return { status: 'False', reason: phase };
  return { status: 'Unknown', reason: phase };
}

/** The first outcome per (branch, method, attempt) wins; junk entries are dropped. */
export function dedupeOutcomes(outcomes: unknown): CallOutcome[] {
  if (!Array.isArray(outcomes)) return [];
  const seen = new Set<string>();
  const out: CallOutcome[] = [];
  for (const o of outcomes as CallOutcome[]) {
    if (!o || typeof o !== 'object') continue;
    const key = `${String(o.branch)}\u0000${String(o.method)}\u0000${String(o.attempt)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(o);
  }
  return out;
}

/**
 * When a failed call finished, clamped to [its start, now]: the call finished
 * between the two, and anything else is a controller bug not worth trusting.
 * Retry delays count from here.
 */
export function failedAt(now: number, lastAttemptTime: string | undefined, o: CallOutcome): number {
  const started = parseTime(lastAttemptTime) ?? now;
  const reported = typeof o.finishedAt === 'number' && Number.isFinite(o.finishedAt) ? o.finishedAt : now;
  return Math.min(now, Math.max(Math.min(started, now), reported));
}

/**
 * A branch's stored status with only its well-formed fields (a status edited
 * by hand, or written by an older or broken writer, may hold anything): state
 * one of `states` (else Pending), attempts a non-negative integer, readable
 * times, bounded error text, and `result` where the mode keeps one.
 */
export function normalizeBranchStatus(name: string, raw: unknown, states: ReadonlySet<string>, keepResult: boolean): BranchStatus {
  const b: BranchStatus = { name, state: 'Pending', attempts: 0 };
  if (!raw || typeof raw !== 'object') return b;
  const r = raw as Record<string, unknown>;
  if (typeof r.state === 'string' && states.has(r.state)) b.state = r.state as BranchState;
  if (typeof r.attempts === 'number' && Number.isInteger(r.attempts) && r.attempts >= 0) b.attempts = r.attempts;
  if (typeof r.totalAttempts === 'number' && Number.isInteger(r.totalAttempts) && r.totalAttempts >= b.attempts) b.totalAttempts = r.totalAttempts;
  if (typeof r.lastError === 'string') b.lastError = truncate(r.lastError);
  const last = validTime(r.lastAttemptTime);
  if (last) b.lastAttemptTime = last;
  const next = validTime(r.nextAttemptTime);
  if (next) b.nextAttemptTime = next;
  if (keepResult && typeof r.result === 'string') b.result = r.result;
  if (r.endpointMisconfigured === true) b.endpointMisconfigured = true;
  const delivery = normalizeDelivery(r.delivery);
  if (delivery) b.delivery = delivery;
  return b;
}

const DELIVERY_ROUTES: ReadonlySet<string> = new Set(['nats', 'redis']);

/**
 * A broker's ack as the engine keeps it (status.branches[].delivery), or
 * undefined when `raw` is not one: the route, the stream and the sequence,
 * bounded as the CRD bounds them. From a stored status or a call's outcome.
 */
export function normalizeDelivery(raw: unknown): BrokerDelivery | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.route !== 'string' || !DELIVERY_ROUTES.has(r.route)) return undefined;
  if (typeof r.stream !== 'string' || r.stream === '' || r.stream.length > 512) return undefined;
  if (typeof r.sequence !== 'string' || r.sequence === '' || r.sequence.length > 64) return undefined;
  const d: BrokerDelivery = { route: r.route as BrokerDelivery['route'], stream: r.stream, sequence: r.sequence };
  if (r.duplicate === true) d.duplicate = true;
  return d;
}

/**
 * A failed branch call that will be tried again: keeps its error and schedules
 * the next attempt at the policy's backoff after the call failed. Returns the
 * CallFailed Event to record.
 */
export function scheduleRetry(b: BranchStatus, o: CallOutcome, now: number, uid: string, method: Method, retry: ResolvedRetryPolicy): EventIntent {
  b.lastError = boundedText(o.message, o.kind === 'timeout' ? 'call timed out' : 'call failed');
  const delay = retryDelayMs(retry, { uid, branch: b.name, method, attempt: b.attempts });
  b.nextAttemptTime = iso(failedAt(now, b.lastAttemptTime, o) + delay);
  return callFailed(b.name, method, `${method} failed: ${b.lastError}`);
}

/**
 * A CallFailed Event (or EndpointMisconfigured/InvalidArgument when the
 * outcome says why) about one branch and method. The note carries no attempt
 * number: Event notes cannot be edited, and repeats of the same failure must
 * fold into one series (the attempts are in status).
 */
export function callFailed(branch: string, method: Method, what: string, reason: string = 'CallFailed'): EventIntent {
  return { ...warning(reason, `branch ${branch}: ${what}`), branch, method };
}

/** A refused Try/Execute: the branch is done, with the participant's reason kept. */
export function refusedEvent(b: BranchStatus, o: CallOutcome): EventIntent {
  return callFailed(b.name, o.method, `${o.method} refused: ${b.lastError ?? 'refused'}`, o.reason ?? 'CallFailed');
}

/**
 * How an outcome counts. An EndpointMisconfigured refusal (the endpoint serves
 * no such gRPC service) means "nothing ran" only on a branch's first call:
 * after an earlier attempt that failed otherwise — and may have run, behind
 * another endpoint of the same Service — it is retried like any failure.
 */
export function effectiveKind(o: CallOutcome): OutcomeKind {
  return o.kind === 'refused' && o.reason === 'EndpointMisconfigured' && o.attempt > 1 ? 'retryable' : o.kind;
}

/** The branch's last error says its endpoint serves no such service (src/participants/classify.ts). */
export const misconfigured = (b: BranchStatus) => typeof b.lastError === 'string' && b.lastError.startsWith('EndpointMisconfigured');

/**
 * One more call of the branch's current method: `attempts` counts against
 * maxAttempts (kubetx.io/retry resets it); `totalAttempts`, kept once a retry
 * has reset `attempts`, never goes back.
 */
export function countAttempt(b: BranchStatus, now: number): void {
  if (b.totalAttempts !== undefined) b.totalAttempts = Math.max(b.totalAttempts, b.attempts) + 1;
  b.attempts += 1;
  b.lastAttemptTime = iso(now);
  delete b.nextAttemptTime;
}

/** A fresh method (the decision): its attempts are counted afresh, and the previous method's error and schedule no longer apply. */
export function resetForNewMethod(b: BranchStatus): void {
  b.attempts = 0;
  delete b.totalAttempts;
  delete b.lastError;
  delete b.nextAttemptTime;
}

/** The status as it was and nothing to call: a finished transaction, or an input the engine cannot act on. */
export function unchanged(prev: TransactionStatus, events: EventIntent[] = []): StepOutput {
  return { status: clone(prev), calls: [], persistBeforeCalls: false, events };
}

/** Without a clock reading nothing can be scheduled: the step changes nothing and says why. Undefined when `now` is usable. */
export function refuseBadClock(input: StepInput, prev: TransactionStatus): StepOutput | undefined {
  if (typeof input.now === 'number' && Number.isFinite(input.now)) return undefined;
  return unchanged(prev, [warning('InvalidInput', `engine step called with now = ${String(input.now)}`)]);
}

/** What every mode's working state holds for the top of its status. */
export interface StatusBasics {
  phase: Phase;
  decision?: Decision;
  generation?: number;
  startTime: string;
  decisionTime?: string;
  completionTime?: string;
  message?: string;
}

/** The status fields every mode writes alike; each mode adds its conditions and branches. */
export function basicStatus(w: StatusBasics): TransactionStatus {
  const s: TransactionStatus = { phase: w.phase };
  if (w.decision) s.decision = w.decision;
  if (w.generation !== undefined) s.observedGeneration = w.generation;
  s.startTime = w.startTime;
  if (w.decisionTime) s.decisionTime = w.decisionTime;
  if (w.completionTime) s.completionTime = w.completionTime;
  if (w.message !== undefined) s.message = w.message;
  return s;
}

/**
 * The basics a step carries over (the mirror of basicStatus): the object's
 * generation, and once decided, the decision's time and reason from the
 * stored status. Call after setting `w.decision`.
 */
export function restoreBasics(w: StatusBasics, tx: DistributedTransaction | undefined, prev: TransactionStatus): void {
  const generation = tx?.metadata?.generation;
  if (typeof generation === 'number') w.generation = generation;
  if (!w.decision) return;
  const decisionTime = validTime(prev.decisionTime);
  if (decisionTime) w.decisionTime = decisionTime;
  if (typeof prev.message === 'string') w.message = truncate(prev.message);
}

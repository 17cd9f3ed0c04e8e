/**
 * Manual intervention by annotation, applied at the start of every step, in every mode.
 *
 *   kubetx.io/retry: <any new value>  failing calls are due now and their attempt
 *                                     budget starts afresh; a Failed transaction
 *                                     that had decided resumes carrying it out.
 *   kubetx.io/abort: <reason>         roll back a transaction that has not decided
 *                                     yet; refused (with an Event) once it has.
 *
 * Each new value is acted on once: status.retryAcknowledged/abortAcknowledged
 * record the value handled. Requests are acted on at most once per
 * MIN_INTERVENTION_INTERVAL_MS (status.interventionTime): a newer value that
 * arrives sooner waits, and only the latest counts, so a script rewriting the
 * annotation every 200 ms cannot turn each rewrite into calls that skip the
 * backoff, nor into a status write and an Event each. Why in the engine, not the controller: the action
 * and its acknowledgement land in the same status write, so a crash can
 * neither lose an acknowledged request nor act on one twice. An empty value is
 * ignored (clearing an annotation is not a request).
 */
import type { BranchStatus, Decision, Phase, TransactionStatus } from '../api/types.js';
import { truncate } from './text.js';
import type { EventIntent, StepInput, StepOutput } from './types.js';

export const RETRY_ANNOTATION = 'kubetx.io/retry';
export const ABORT_ANNOTATION = 'kubetx.io/abort';
/** The CRD's bound on the acknowledgement fields. */
export const MAX_ACK = 1024;
/** Requests on one transaction are acted on at most this often. */
export const MIN_INTERVENTION_INTERVAL_MS = 10_000;

/** What intervention needs to know about a mode. */
export interface InterventionMode {
  /** The phase a Failed transaction with this decision resumes; undefined = it failed before deciding. */
  resumePhase(decision: Decision | undefined): Phase | undefined;
  /** The branch is done with the method its phase calls: no budget to reset. */
  isSettled(state: string, decision: Decision | undefined): boolean;
  /** Finished for good (Failed is not): nothing can change any more. */
  isFinished(phase: string | undefined): boolean;
}

/** A mode's step, told of a new abort request ("aborted by user: <reason>") it must act on or refuse. */
export type CoreStep = (input: StepInput, abortMessage: string | undefined) => StepOutput;

interface Intervention {
  status: TransactionStatus;
  abortMessage?: string;
  events: EventIntent[];
}

/** A request that came too soon after the last one: look again after this long. */
interface Deferred {
  deferMs: number;
}

/** Runs `core` on the status with any new request applied, and keeps the acknowledgements in every status it returns. */
export function stepWithIntervention(input: StepInput, mode: InterventionMode, core: CoreStep): StepOutput {
  const found = intervene(input, mode);
  const iv = found && 'status' in found ? found : undefined;
  const out = iv ? core({ ...input, status: iv.status }, iv.abortMessage) : core(input, undefined);
  // Engines rebuild status from scratch; the acknowledgements must survive every step or requests would repeat.
  const acks = acknowledgements(iv?.status ?? input?.status);
  if (Object.keys(acks).length > 0) out.status = { ...out.status, ...acks };
  if (found && 'deferMs' in found) out.requeueAfterMs = Math.min(out.requeueAfterMs ?? Infinity, found.deferMs);
  if (!iv) return out;
  return {
    ...out,
    // A request acted on must be stored before the calls it causes, so a crash cannot act on it twice.
    persistBeforeCalls: out.persistBeforeCalls || out.calls.length > 0,
    events: [...iv.events, ...out.events],
  };
}

export function abortAccepted(message: string): EventIntent {
  return { type: 'Warning', reason: 'AbortRequested', message: truncate(message) };
}

export function abortRefused(decision: Decision): EventIntent {
  return { type: 'Warning', reason: 'AbortRefused', message: `transaction already decided ${decision}; abort has no effect` };
}

/** The value stored as acknowledgement: as written, or, when too long, a prefix with a hash that keeps values apart. */
export function ackValue(value: string): string {
  if (value.length <= MAX_ACK) return value;
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value.charCodeAt(i), 0x01000193);
  return `${value.slice(0, MAX_ACK - 10)}…#${(h >>> 0).toString(16).padStart(8, '0')}`;
}

function intervene(input: StepInput, mode: InterventionMode): Intervention | Deferred | undefined {
  const annotations: unknown = input?.tx?.metadata?.annotations;
  if (!annotations || typeof annotations !== 'object') return undefined;
  const prev: TransactionStatus = isObject(input.status) ? input.status : {};
  const retry = newRequest((annotations as Record<string, unknown>)[RETRY_ANNOTATION], prev.retryAcknowledged);
  const abort = newRequest((annotations as Record<string, unknown>)[ABORT_ANNOTATION], prev.abortAcknowledged);
  if (retry === undefined && abort === undefined) return undefined;
  const last = typeof prev.interventionTime === 'string' ? Date.parse(prev.interventionTime) : NaN;
  const wait = Number.isNaN(last) ? 0 : last + MIN_INTERVENTION_INTERVAL_MS - input.now;
  // A clock far behind the recorded time must not defer requests for ever: at most one interval.
  if (wait > 0) return { deferMs: Math.min(wait, MIN_INTERVENTION_INTERVAL_MS) };

  const iv: Intervention = { status: copy(prev), events: [] };
  iv.status.interventionTime = new Date(input.now).toISOString();
  if (retry !== undefined) {
    applyRetry(iv, mode, retry);
    iv.status.retryAcknowledged = ackValue(retry);
  }
  if (abort !== undefined) {
    applyAbort(iv, mode, abort);
    iv.status.abortAcknowledged = ackValue(abort);
  }
  return iv;
}

function applyRetry(iv: Intervention, mode: InterventionMode, value: string): void {
  const s = iv.status;
  const label = `${RETRY_ANNOTATION}=${truncate(value, 64)}`;
  if (mode.isFinished(s.phase)) {
    iv.events.push({ type: 'Normal', reason: 'RetryRequested', message: `${label}: transaction already ${s.phase}; nothing to retry` });
    return;
  }
  const failed = s.phase === 'Failed';
  if (failed) {
    const resume = mode.resumePhase(s.decision);
    if (!resume) {
      // Nothing was decided, so nothing is owed to participants; the cause (an invalid spec) does not go away by retrying.
      const why = truncate(`${label}: transaction failed before deciding (${s.message ?? 'no message'}); a retry cannot fix that, create a corrected transaction`);
      iv.events.push({ type: 'Warning', reason: 'RetryRefused', message: why });
      return;
    }
    s.phase = resume;
    s.message = truncate(`${resume} resumed by ${RETRY_ANNOTATION} after: ${s.message ?? 'Failed'}`);
  }
  let reset = 0;
  for (const b of Array.isArray(s.branches) ? s.branches : []) {
    if (!isObject(b) || mode.isSettled(String(b.state), s.decision)) continue;
    // Outside Failed, only branches waiting for a retry are failing; one in flight keeps its attempt.
    if (!failed && b.nextAttemptTime === undefined) continue;
    if ((b as BranchStatus).attempts > 0 || b.nextAttemptTime !== undefined) reset++;
    // The budget starts again; the history does not go away.
    const attempts = typeof b.attempts === 'number' && Number.isInteger(b.attempts) && b.attempts > 0 ? b.attempts : 0;
    const total = typeof b.totalAttempts === 'number' && Number.isInteger(b.totalAttempts) ? b.totalAttempts : 0;
    if (Math.max(attempts, total) > 0) b.totalAttempts = Math.max(attempts, total);
    b.attempts = 0;
    delete b.nextAttemptTime;
  }
  const resumed = failed ? `; resuming ${s.phase}` : '';
  iv.events.push({ type: 'Normal', reason: 'RetryRequested', message: `${label}: attempt budget reset for ${reset} branch(es)${resumed}` });
}

function applyAbort(iv: Intervention, mode: InterventionMode, reason: string): void {
  const s = iv.status;
  if (mode.isFinished(s.phase)) {
    iv.events.push({ type: 'Warning', reason: 'AbortRefused', message: `transaction already ${s.phase}; abort has no effect` });
  } else if (s.decision) {
    iv.events.push(abortRefused(s.decision));
  } else if (s.phase === 'Failed') {
    iv.events.push({ type: 'Warning', reason: 'AbortRefused', message: 'transaction failed before deciding; abort has no effect' });
  } else {
    // The mode decides (after recording the answers of calls in flight) or refuses if it finds a decision after all.
    iv.abortMessage = truncate(`aborted by user: ${reason}`);
  }
}

function newRequest(value: unknown, acknowledged: unknown): string | undefined {
  return typeof value === 'string' && value !== '' && ackValue(value) !== acknowledged ? value : undefined;
}

function acknowledgements(status: unknown): Pick<TransactionStatus, 'retryAcknowledged' | 'abortAcknowledged' | 'interventionTime'> {
  const out: Pick<TransactionStatus, 'retryAcknowledged' | 'abortAcknowledged' | 'interventionTime'> = {};
  if (!isObject(status)) return out;
  if (typeof status.interventionTime === 'string') out.interventionTime = status.interventionTime;
  if (typeof status.retryAcknowledged === 'string') out.retryAcknowledged = status.retryAcknowledged;
  if (typeof status.abortAcknowledged === 'string') out.abortAcknowledged = status.abortAcknowledged;
  return out;
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function copy(status: TransactionStatus): TransactionStatus {
  try {
    return structuredClone(status);
  } catch {
    return { ...status };
  }
}

/**
 * The best-effort notification state machine, as one pure step.
 *
 *   Notifying ──every branch's Deliver answered OK──────────────────────→ Delivered
 *      └──every branch done, at least one reached notify.maxAttempts──→ Exhausted
 *   invalid spec (before any call) ──────────────────────────────────────→ Failed
 *
 * Each branch's Deliver is called at once, then again after each failure
 * following spec.notify.schedule: the delay before attempt n+1 is
 * schedule[min(n-1, len-1)] (the last interval repeats), counted from when
 * attempt n failed (or, if its answer was lost because the controller
 * restarted, from when it was made). After notify.maxAttempts failed attempts
 * the branch is Exhausted and is not called again; the transaction ends when
 * every branch is Delivered or Exhausted. Branches are independent: one
 * offline receiver does not hold the others back. spec.timeout and spec.retry
 * do not apply.
 *
 * There is no decision to take and nothing to compensate, but every step that
 * makes calls still asks the controller to persist first, so that the attempt
 * counts (the cap) and the schedule hold across operator restarts. A clean
 * notification costs two status writes.
 *
 * The object stays readable after Delivered or Exhausted (until
 * ttlAfterFinished, if set): the receiver, or anyone, can query the result.
 */
import type { BranchState, BranchStatus, NotifyPhase, TransactionStatus } from '../api/types.js';
import { setCondition } from './conditions.js';
import { resolveConfig, type ResolvedConfig } from './config.js';
import { parseDuration } from './duration.js';
import { stepWithIntervention, type InterventionMode } from './intervention.js';
import { boundedText, iso, parseTime, truncate } from './text.js';
import { startTimeOf } from './start-time.js';
import type { Call, CallOutcome, EventIntent, Step, StepInput, StepOutput } from './types.js';
import { basicStatus, callFailed, countAttempt, dedupeOutcomes, failedAt, normalizeBranchStatus, normalizeDelivery, type Outcomes, refuseBadClock, restoreBasics, succeededFor, unchanged, warning } from './common.js';

export const DEFAULT_NOTIFY_SCHEDULE: readonly string[] = ['1s', '5s', '15s', '30s', '1m', '5m', '15m', '30m', '1h'];
export const DEFAULT_NOTIFY_MAX_ATTEMPTS = 50;
/**
 * Floor of a schedule interval (the CRD's minimum for spec.notify.schedule), so
 * "1ns" cannot make the controller call and write status in a tight loop.
 */
export const MIN_NOTIFY_DELAY_MS = 1_000;

/** For the Succeeded condition. */
const OUTCOMES: Outcomes = { success: 'Delivered', unsuccessful: ['Exhausted'] };
const TERMINAL: ReadonlySet<string> = new Set<NotifyPhase>(['Delivered', 'Exhausted', 'Failed']);
const BRANCH_STATES: ReadonlySet<string> = new Set<BranchState>(['Pending', 'Delivering', 'Delivered', 'Exhausted']);

export function isTerminalNotifyPhase(phase: string | undefined): boolean {
  return phase !== undefined && TERMINAL.has(phase);
}

export interface ResolvedNotify {
  /** Milliseconds, at least one entry. */
  scheduleMs: number[];
  /** 0 = no limit. */
  maxAttempts: number;
  errors: string[];
}

/** spec.notify with defaults applied; bad values are reported in errors (each naming its field) and replaced by defaults. */
export function resolveNotify(notify: unknown): ResolvedNotify {
  const errors: string[] = [];
  const n = notify && typeof notify === 'object' ? (notify as Record<string, unknown>) : {};
  if (notify !== undefined && notify !== null && typeof notify !== 'object') errors.push('spec.notify: must be an object');
  let scheduleMs = DEFAULT_NOTIFY_SCHEDULE.map(parseDuration);
  if (n.schedule !== undefined && n.schedule !== null) {
    if (!Array.isArray(n.schedule)) {
      errors.push('spec.notify.schedule: must be a list of durations');
    } else if (n.schedule.length > 0) {
      const parsed: number[] = [];
      n.schedule.forEach((d, i) => {
        try {
          parsed.push(parseDuration(d));
        } catch (err) {
          errors.push(`spec.notify.schedule[${i}]: ${(err as Error).message}`);
        }
      });
      if (parsed.length === n.schedule.length) scheduleMs = parsed;
    }
  }
  let maxAttempts = DEFAULT_NOTIFY_MAX_ATTEMPTS;
  if (n.maxAttempts !== undefined && n.maxAttempts !== null) {
    if (typeof n.maxAttempts === 'number' && Number.isInteger(n.maxAttempts) && n.maxAttempts >= 0) maxAttempts = n.maxAttempts;
    else errors.push(`spec.notify.maxAttempts: must be a whole number ≥ 0, got ${JSON.stringify(n.maxAttempts)}`);
  }
  return { scheduleMs, maxAttempts, errors };
}

/** Delay before attempt n+1 after attempt n (1-based) failed: schedule[min(n-1, len-1)], at least MIN_NOTIFY_DELAY_MS. */
export function notifyDelayMs(scheduleMs: readonly number[], attempt: number): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const d = scheduleMs[Math.min(n - 1, scheduleMs.length - 1)] ?? 0;
  return Math.max(MIN_NOTIFY_DELAY_MS, d);
}

interface Work {
  /** Failed because the spec was refused before any call (condition reason InvalidSpec). */
  refusedSpec?: boolean;
  now: number;
  generation?: number;
  cfg: ResolvedConfig;
  notify: ResolvedNotify;
  phase: NotifyPhase;
  startTime: string;
  completionTime?: string;
  message?: string;
  branches: BranchStatus[];
  /** Branches whose outcome arrived in this step (their in-flight call is answered). */
  answered: Set<string>;
  calls: Call[];
  events: EventIntent[];
}

/**
 * kubetx.io/retry and kubetx.io/abort (intervention.ts): retry makes branches
 * waiting for their next slot due now, with a fresh attempt budget (an
 * Exhausted transaction is finished: create a new one). Abort is refused:
 * a notification has nothing to roll back (delete the object to stop it).
 */
const NOTIFY_INTERVENTION: InterventionMode = {
  resumePhase: () => undefined,
  isSettled: (state) => state === 'Delivered' || state === 'Exhausted',
  isFinished: (phase) => phase === 'Delivered' || phase === 'Exhausted',
};

export const stepNotify: Step = (input: StepInput): StepOutput => stepWithIntervention(input, NOTIFY_INTERVENTION, stepNotifyCore);

function stepNotifyCore(input: StepInput, abortMessage: string | undefined): StepOutput {
  const prev: TransactionStatus = input.status && typeof input.status === 'object' ? input.status : {};
  if (isTerminalNotifyPhase(prev.phase)) return unchanged(prev);
  const badClock = refuseBadClock(input, prev);
  if (badClock) return badClock;
  const w = load(input, prev);
  if (abortMessage !== undefined) {
    w.events.push(warning('AbortRefused', 'a Notify transaction has nothing to roll back; abort has no effect (delete the object to stop notifying)'));
  }
  const errors = [...w.cfg.errors, ...w.notify.errors];
  if (errors.length > 0) {
    w.phase = 'Failed';
    w.refusedSpec = true;
    w.message = truncate(`invalid spec: ${errors.join('; ')}`);
    w.events.push(warning('InvalidSpec', w.message));
    return output(w, prev);
  }

  for (const o of dedupeOutcomes(input.outcomes)) applyOutcome(w, o);
  for (const b of w.branches) {
    // In flight with no answer in this step: the controller restarted after making the call. Count it as failed.
    if (b.state === 'Delivering' && b.attempts > 0 && b.nextAttemptTime === undefined && !w.answered.has(b.name)) {
      failed(w, b, `no answer to attempt ${b.attempts} (the operator restarted?)`, parseTime(b.lastAttemptTime) ?? w.now);
    }
  }

  if (w.branches.every((b) => b.state === 'Delivered' || b.state === 'Exhausted')) {
    finish(w);
    return output(w, prev);
  }
  for (const b of w.branches) {
    if (b.state === 'Delivered' || b.state === 'Exhausted') continue;
    const next = parseTime(b.nextAttemptTime);
    if (next !== undefined && w.now < next) continue;
    countAttempt(b, w.now);
    b.state = 'Delivering';
    w.calls.push({ branch: b.name, method: 'Deliver', attempt: b.attempts });
  }
  return output(w, prev);
}

function load(input: StepInput, prev: TransactionStatus): Work {
  const tx = input.tx;
  const cfg = resolveConfig(tx);
  const previous = new Map<string, unknown>();
  if (Array.isArray(prev.branches)) {
    for (const b of prev.branches) {
      if (b && typeof b === 'object' && typeof b.name === 'string' && !previous.has(b.name)) previous.set(b.name, b);
    }
  }
  const w: Work = {
    now: input.now,
    cfg,
    notify: resolveNotify(tx?.spec?.notify),
    phase: 'Notifying',
    startTime: startTimeOf(prev, tx, input.now),
    branches: cfg.branches.map((rb) => normalizeBranch(rb.name, previous.get(rb.name))),
    answered: new Set(),
    calls: [],
    events: [],
  };
  restoreBasics(w, tx, prev);
  return w;
}

function normalizeBranch(name: string, raw: unknown): BranchStatus {
  const b = normalizeBranchStatus(name, raw, BRANCH_STATES, false);
  if (b.state === 'Pending' && b.attempts > 0) b.state = 'Delivering';
  if (b.state !== 'Pending' && b.attempts === 0) b.state = 'Pending';
  return b;
}

function applyOutcome(w: Work, o: CallOutcome): void {
  if (o.method !== 'Deliver') return;
  const b = w.branches.find((x) => x.name === o.branch);
  if (!b || b.state !== 'Delivering') return;
  if (o.attempt !== b.attempts || b.attempts === 0 || b.nextAttemptTime !== undefined) return;
  w.answered.add(b.name);
  if (o.kind === 'ok') {
    b.state = 'Delivered';
    delete b.lastError;
    const delivery = normalizeDelivery(o.delivery);
    if (delivery) b.delivery = delivery;
    return;
  }
  failed(w, b, boundedText(o.message, o.kind === 'timeout' ? 'call timed out' : 'call failed'), failedAt(w.now, b.lastAttemptTime, o));
}

/** Attempt `b.attempts` failed at `at`: schedule the next one, or stop at the cap. */
function failed(w: Work, b: BranchStatus, error: string, at: number): void {
  b.lastError = error;
  const max = w.notify.maxAttempts;
  if (max > 0 && b.attempts >= max) {
    b.state = 'Exhausted';
    delete b.nextAttemptTime;
    w.events.push(callFailed(b.name, 'Deliver', `Deliver failed ${b.attempts} times (notify.maxAttempts ${max}), giving up: ${error}`, 'NotifyExhausted'));
    return;
  }
  const delay = notifyDelayMs(w.notify.scheduleMs, b.attempts);
  b.nextAttemptTime = iso(at + delay);
  w.events.push(callFailed(b.name, 'Deliver', `Deliver failed: ${error}`));
}

function finish(w: Work): void {
  w.completionTime = iso(w.now);
  const exhausted = w.branches.filter((b) => b.state === 'Exhausted').map((b) => b.name);
  if (exhausted.length === 0) {
    w.phase = 'Delivered';
    w.message = `delivered to all ${w.branches.length} branches`;
    w.events.push({ type: 'Normal', reason: 'Delivered', message: w.message });
  } else {
    w.phase = 'Exhausted';
    w.message = truncate(`not delivered to ${exhausted.join(', ')} after ${w.notify.maxAttempts} attempts each; delivered to ${w.branches.length - exhausted.length} of ${w.branches.length}`);
    w.events.push(warning('Exhausted', w.message));
  }
}

function output(w: Work, prev: TransactionStatus): StepOutput {
  const terminal = isTerminalNotifyPhase(w.phase);
  const calls = terminal ? [] : w.calls;
  const out: StepOutput = {
    status: buildStatus(w, prev),
    calls,
    // The attempt count (the cap) and schedule survive a restart only if stored before the call.
    persistBeforeCalls: calls.length > 0,
    events: w.events,
  };
  if (!terminal) {
    let earliest: number | undefined;
    for (const b of w.branches) {
      const next = parseTime(b.nextAttemptTime);
      if (b.state === 'Delivering' && next !== undefined && (earliest === undefined || next < earliest)) earliest = next;
    }
    if (earliest !== undefined) out.requeueAfterMs = Math.max(0, earliest - w.now);
  }
  return out;
}

function buildStatus(w: Work, prev: TransactionStatus): TransactionStatus {
  const s = basicStatus(w);
  const succeeded = succeededFor(w.phase, OUTCOMES, w.refusedSpec === true);
  s.conditions = setCondition(
    prev.conditions,
    {
      type: 'Succeeded',
      ...succeeded,
      message: w.message ?? 'Notifying: delivering to every branch',
      ...(w.generation !== undefined ? { observedGeneration: w.generation } : {}),
    },
    w.now,
  );
  s.branches = w.branches;
  s.progress = `${w.branches.filter((b) => b.state === 'Delivered').length}/${w.branches.length}`;
  return s;
}

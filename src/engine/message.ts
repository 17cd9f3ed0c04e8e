/**
 * The reliable-message (2-phase message) state machine, as one pure step.
 *
 *   Prepared ──spec.message.decision Commit, or the source answers COMMITTED──→ Delivering ──every Deliver OK──→ Delivered
 *      └─────spec.message.decision Rollback, or the source answers ROLLED_BACK─→ RolledBack
 *      └─────no decision by creation + checkAfter + timeout───────────────────→ RolledBack (default) | Failed
 *   Delivering ──a branch's retry budget spent──→ Failed (a human takes over)
 *
 * The upstream creates the transaction (phase Prepared) before its local
 * database transaction, then sets spec.message.decision to Commit or Rollback.
 * If no decision has arrived `checkAfter` (default 10s) after creation, the
 * operator asks the source "did your local transaction commit?" (CheckPrepared,
 * a Call with the reserved branch name "@source"; branch names are DNS labels,
 * so it cannot clash). COMMITTED or ROLLED_BACK decide; UNKNOWN or a failed call
 * asks again with the spec's retry backoff (its maxAttempts does not apply to
 * checks) until `timeout` has passed since the first check could be made,
 * i.e. creation + checkAfter + timeout. Then the message is rolled back, or
 * the transaction goes Failed if the operator runs with onCheckTimeout=Fail
 * (a Failed message without a decision still proceeds when the upstream, or a
 * human, sets spec.message.decision).
 *
 * Safety, as in TCC:
 *  - the decision (status.decision Deliver | Rollback) is taken once and never changes;
 *  - every step that makes Deliver calls asks the controller to persist first
 *    (write-ahead), so no Deliver is ever made without a stored Deliver
 *    decision, and the attempt counts that bound retries survive crashes;
 *  - an outcome counts only if it answers the call in flight (same branch or
 *    "@source", method, current attempt, no retry scheduled yet).
 *
 * Delivery is at-least-once: Deliver is repeated until it returns OK, so
 * receivers must be idempotent on (uid, branch) — the SDK's barrier does that.
 */
import type {
  BranchState,
  BranchStatus,
  DistributedTransaction,
  Endpoint,
  MessageCheckStatus,
  MessageDecision,
  MessagePhase,
  TransactionStatus,
} from '../api/types.js';
import { defaultRetryPolicy, effectiveRetryPolicy, retryDelayMs, type ResolvedRetryPolicy } from './backoff.js';
import { setCondition } from './conditions.js';
import { resolveConfig, type ResolvedBranch, type ResolvedConfig } from './config.js';
import { MIN_CHECK_AFTER_MS, formatDuration, parseDurationField } from './duration.js';
import { abortAccepted, abortRefused, stepWithIntervention, type InterventionMode } from './intervention.js';
import { boundedText, iso, parseTime, truncate, validTime } from './text.js';
import { startTimeOf } from './start-time.js';
import type { Call, CallOutcome, EventIntent, Step, StepInput, StepOutput } from './types.js';
import { basicStatus, countAttempt, dedupeOutcomes, resetForNewMethod, failedAt, normalizeBranchStatus, normalizeDelivery, type Outcomes, refuseBadClock, restoreBasics, scheduleRetry, succeededFor, unchanged, warning } from './common.js';

/** The branch name of the CheckPrepared call (not a valid DNS label, so never a real branch). */
export const SOURCE_BRANCH = '@source';
export const DEFAULT_CHECK_AFTER_MS = 10_000;

/** What to do when check-back got no definite answer by creation + checkAfter + timeout. */
export type CheckTimeoutAction = 'Rollback' | 'Fail';

export interface MessageEngineOptions {
  /** @default "Rollback" */
  onCheckTimeout?: CheckTimeoutAction;
}

/** For the Succeeded condition. */
const OUTCOMES: Outcomes = { success: 'Delivered', unsuccessful: ['RolledBack'] };
const TERMINAL: ReadonlySet<string> = new Set<MessagePhase>(['Delivered', 'RolledBack', 'Failed']);
const BRANCH_STATES: ReadonlySet<string> = new Set<BranchState>(['Pending', 'Delivering', 'Delivered']);
const ANSWERS: ReadonlySet<string> = new Set(['COMMITTED', 'ROLLED_BACK', 'UNKNOWN']);

export function isTerminalMessagePhase(phase: string | undefined): boolean {
  return phase !== undefined && TERMINAL.has(phase);
}

interface Work {
  /** Failed because the spec was refused before any call (condition reason InvalidSpec). */
  refusedSpec?: boolean;
  now: number;
  uid: string;
  generation?: number;
  cfg: ResolvedConfig;
  /** Spec problems specific to Message mode (spec.message.*). */
  errors: string[];
  checkRetry: ResolvedRetryPolicy;
  checkAfterMs: number;
  phase: MessagePhase;
  decision?: MessageDecision;
  startTime: string;
  /** When the first check-back may be made. */
  checkAt: number;
  /** When check-back gives up. */
  deadline: number;
  decisionTime?: string;
  completionTime?: string;
  message?: string;
  check: MessageCheckStatus;
  /** The answer received in this step (only a fresh answer decides). */
  freshAnswer?: 'COMMITTED' | 'ROLLED_BACK' | 'UNKNOWN';
  branches: BranchStatus[];
  calls: Call[];
  events: EventIntent[];
}

/**
 * kubetx.io/retry and kubetx.io/abort (intervention.ts): retry resets the
 * Deliver budget of failing branches and resumes a Failed delivery; abort
 * rolls back a message that has no decision yet — refused when the upstream
 * already set spec.message.decision (its local transaction decided).
 */
const MESSAGE_INTERVENTION: InterventionMode = {
  resumePhase: (d) => (d === 'Deliver' ? 'Delivering' : undefined),
  isSettled: (state, d) => (d === 'Deliver' ? state === 'Delivered' : true),
  isFinished: (phase) => phase === 'Delivered' || phase === 'RolledBack',
};

export function makeStepMessage(options: MessageEngineOptions = {}): Step {
  const onCheckTimeout: CheckTimeoutAction = options.onCheckTimeout === 'Fail' ? 'Fail' : 'Rollback';
  const core = (input: StepInput, abortMessage: string | undefined): StepOutput => {
    const prev: TransactionStatus = input.status && typeof input.status === 'object' ? input.status : {};
    const specDecision = specMessageDecision(input.tx);
    // Failed before any decision (invalid spec, or check-back timed out with onCheckTimeout=Fail)
    // still proceeds when a decision is set in the spec; every other terminal phase is final.
    const resumable = prev.phase === 'Failed' && !isMessageDecision(prev.decision) && specDecision !== undefined;
    if (isTerminalMessagePhase(prev.phase) && !resumable) {
      return unchanged(prev);
    }
    const badClock = refuseBadClock(input, prev);
    if (badClock) return badClock;
    const w = load(input, prev);

    for (const o of dedupeOutcomes(input.outcomes)) applyOutcome(w, o);

    const decidedBefore = w.decision !== undefined;
    if (!w.decision) {
      const errors = [...w.cfg.errors, ...w.errors];
      if (errors.length > 0) {
        // Nothing was delivered yet, so there is nothing to undo: refuse the spec.
        if (prev.phase === 'Failed') return unchanged(prev);
        fail(w, `invalid spec: ${errors.join('; ')}`, 'InvalidSpec');
        return output(w, prev);
      }
      if (specDecision === 'Commit') decide(w, 'Deliver', 'spec.message.decision is Commit');
      else if (specDecision === 'Rollback') decide(w, 'Rollback', 'spec.message.decision is Rollback');
      else if (abortMessage !== undefined) {
        w.events.push(abortAccepted(abortMessage));
        decide(w, 'Rollback', abortMessage, 'Warning');
      } else if (w.freshAnswer === 'COMMITTED') decide(w, 'Deliver', `check-back: the source answered COMMITTED (attempt ${w.check.attempts})`);
      else if (w.freshAnswer === 'ROLLED_BACK') decide(w, 'Rollback', `check-back: the source answered ROLLED_BACK (attempt ${w.check.attempts})`);
      else if (!(w.now < w.deadline)) {
        const why =
          `no decision and no definite check-back answer within checkAfter ${formatDuration(w.checkAfterMs)} + timeout ${w.cfg.timeoutText}` +
          (w.check.attempts > 0 ? ` (${w.check.attempts} check${w.check.attempts === 1 ? '' : 's'}, last: ${w.check.lastError ?? w.check.lastAnswer ?? 'no answer'})` : ' (no check was made)');
        if (onCheckTimeout === 'Rollback') {
          decide(w, 'Rollback', why, 'Warning');
        } else {
          delete w.check.nextAttemptTime;
          fail(w, `${why}: set spec.message.decision to Commit or Rollback`, 'CheckTimeout');
          return output(w, prev);
        }
      }
    }

    if (abortMessage !== undefined && (decidedBefore || specDecision !== undefined) && w.decision) w.events.push(abortRefused(w.decision));

    if (w.decision === 'Rollback') {
      finish(w);
      return output(w, prev);
    }
    if (w.decision === 'Deliver') {
      if (w.branches.every((b) => b.state === 'Delivered')) {
        finish(w);
        return output(w, prev);
      }
      const exhausted = budgetExhausted(w);
      if (exhausted) {
        fail(w, exhausted, 'RetryBudgetExhausted');
        return output(w, prev);
      }
      issueDeliveries(w);
      return output(w, prev);
    }
    issueCheck(w);
    return output(w, prev);
  };
  return (input: StepInput): StepOutput => stepWithIntervention(input, MESSAGE_INTERVENTION, core);
}

/** The engine with the default: roll back when check-back times out. */
export const stepMessage: Step = makeStepMessage();

function specMessageDecision(tx: DistributedTransaction): 'Commit' | 'Rollback' | undefined {
  const d: unknown = tx?.spec?.message?.decision;
  return d === 'Commit' || d === 'Rollback' ? d : undefined;
}

function isMessageDecision(d: unknown): d is MessageDecision {
  return d === 'Deliver' || d === 'Rollback';
}

function load(input: StepInput, prev: TransactionStatus): Work {
  const tx = input.tx;
  const now = input.now;
  const cfg = resolveConfig(tx);
  const errors: string[] = [];
  const msg = tx?.spec?.message;
  let checkAfterMs = DEFAULT_CHECK_AFTER_MS;
  if (!msg || typeof msg !== 'object') {
    errors.push('spec.message: required when spec.mode is Message');
  } else {
    try {
      checkAfterMs = Math.max(MIN_CHECK_AFTER_MS, parseDurationField(msg.checkAfter, DEFAULT_CHECK_AFTER_MS, 'spec.message.checkAfter'));
    } catch (err) {
      errors.push((err as Error).message);
    }
    const ep: Endpoint | undefined = msg.source?.endpoint;
    if (!ep || typeof ep !== 'object' || (!ep.service && !ep.address)) {
      errors.push('spec.message.source.endpoint: one of service or address is required');
    }
    const d: unknown = msg.decision;
    if (d !== undefined && d !== null && d !== '' && d !== 'Commit' && d !== 'Rollback') {
      errors.push(`spec.message.decision: must be "", Commit or Rollback, got ${JSON.stringify(d)}`);
    }
  }
  let checkRetry: ResolvedRetryPolicy;
  try {
    checkRetry = effectiveRetryPolicy(tx?.spec);
  } catch {
    checkRetry = defaultRetryPolicy(); // already reported by resolveConfig
  }
  const startTime = startTimeOf(prev, tx, now);
  const start = Date.parse(startTime);

  const previous = new Map<string, unknown>();
  if (Array.isArray(prev.branches)) {
    for (const b of prev.branches) {
      if (b && typeof b === 'object' && typeof b.name === 'string' && !previous.has(b.name)) previous.set(b.name, b);
    }
  }
  const branches = cfg.branches.map((rb) => normalizeBranch(rb.name, previous.get(rb.name)));

  // A status that lost its decision but shows a Deliver made can only carry on delivering.
  const decision: MessageDecision | undefined = isMessageDecision(prev.decision)
    ? prev.decision
    : prev.phase === 'Delivering' || branches.some((b) => b.state !== 'Pending')
      ? 'Deliver'
      : undefined;
  const w: Work = {
    now,
    uid: typeof tx?.metadata?.uid === 'string' ? tx.metadata.uid : '',
    cfg,
    errors,
    checkRetry,
    checkAfterMs,
    phase: decision === 'Deliver' ? 'Delivering' : 'Prepared',
    startTime,
    checkAt: start + checkAfterMs,
    deadline: start + checkAfterMs + cfg.timeoutMs,
    check: normalizeCheck(prev.check),
    branches,
    calls: [],
    events: [],
  };
  if (decision) w.decision = decision;
  restoreBasics(w, tx, prev);
  return w;
}

function normalizeBranch(name: string, raw: unknown): BranchStatus {
  const b = normalizeBranchStatus(name, raw, BRANCH_STATES, false);
  if (b.state === 'Pending' && b.attempts > 0) b.state = 'Delivering';
  return b;
}

function normalizeCheck(raw: unknown): MessageCheckStatus {
  const c: MessageCheckStatus = { attempts: 0 };
  if (!raw || typeof raw !== 'object') return c;
  const r = raw as Record<string, unknown>;
  if (typeof r.attempts === 'number' && Number.isInteger(r.attempts) && r.attempts >= 0) c.attempts = r.attempts;
  if (typeof r.lastAnswer === 'string' && ANSWERS.has(r.lastAnswer)) c.lastAnswer = r.lastAnswer as MessageCheckStatus['lastAnswer'];
  if (typeof r.lastError === 'string') c.lastError = truncate(r.lastError);
  const last = validTime(r.lastAttemptTime);
  if (last) c.lastAttemptTime = last;
  const next = validTime(r.nextAttemptTime);
  if (next) c.nextAttemptTime = next;
  return c;
}

function resolved(w: Work, name: string): ResolvedBranch {
  return w.cfg.branches.find((rb) => rb.name === name)!;
}

function applyOutcome(w: Work, o: CallOutcome): void {
  if (o.method === 'CheckPrepared') {
    if (o.branch !== SOURCE_BRANCH || w.decision) return;
    const c = w.check;
    if (o.attempt !== c.attempts || c.attempts === 0 || c.nextAttemptTime !== undefined) return;
    const answer = o.kind === 'ok' && typeof o.checkState === 'string' && ANSWERS.has(o.checkState) ? o.checkState : undefined;
    if (answer) {
      c.lastAnswer = answer;
      delete c.lastError;
      w.freshAnswer = answer;
      if (answer !== 'UNKNOWN') return;
    } else {
      c.lastError = boundedText(o.message, o.kind === 'timeout' ? 'call timed out' : o.kind === 'ok' ? 'no state in the answer' : 'call failed');
      w.events.push({ ...warning('CheckFailed', `source: CheckPrepared failed: ${c.lastError}`), branch: SOURCE_BRANCH, method: 'CheckPrepared' });
    }
    const delay = retryDelayMs(w.checkRetry, { uid: w.uid, branch: SOURCE_BRANCH, method: 'CheckPrepared', attempt: c.attempts });
    c.nextAttemptTime = iso(failedAt(w.now, c.lastAttemptTime, o) + delay);
    return;
  }
  if (o.method !== 'Deliver' || w.decision !== 'Deliver') return;
  const b = w.branches.find((x) => x.name === o.branch);
  if (!b || b.state === 'Delivered') return;
  if (o.attempt !== b.attempts || b.attempts === 0 || b.nextAttemptTime !== undefined) return;
  if (o.kind === 'ok') {
    b.state = 'Delivered';
    delete b.nextAttemptTime;
    delete b.lastError;
    const delivery = normalizeDelivery(o.delivery);
    if (delivery) b.delivery = delivery;
    return;
  }
  // Any failure of Deliver (refused included: it is no business "no") is retried.
  w.events.push(scheduleRetry(b, o, w.now, w.uid, 'Deliver', resolved(w, b.name).retry));
}

function decide(w: Work, decision: MessageDecision, reason: string, type: 'Normal' | 'Warning' = 'Normal'): void {
  w.decision = decision;
  w.phase = decision === 'Deliver' ? 'Delivering' : 'RolledBack';
  w.decisionTime = iso(w.now);
  w.message = truncate(reason);
  delete w.check.nextAttemptTime;
  for (const b of w.branches) {
    b.state = 'Pending';
    resetForNewMethod(b);
    delete b.lastAttemptTime;
  }
  w.events.push({ type, reason: 'Decided', message: truncate(`${decision}: ${reason}`) });
}

function budgetExhausted(w: Work): string | undefined {
  for (const b of w.branches) {
    const max = resolved(w, b.name).retry.maxAttempts;
    if (max > 0 && b.state !== 'Delivered' && b.attempts >= max) {
      const why = b.nextAttemptTime !== undefined ? (b.lastError ?? 'call failed') : 'no answer to the last attempt';
      return `branch ${b.name}: Deliver failed ${b.attempts} times, retry budget spent: ${why}`;
    }
  }
  return undefined;
}

function finish(w: Work): void {
  w.completionTime = iso(w.now);
  if (w.decision === 'Deliver') {
    w.phase = 'Delivered';
    w.message = `delivered to all ${w.branches.length} branches`;
    w.events.push({ type: 'Normal', reason: 'Delivered', message: w.message });
  } else {
    w.phase = 'RolledBack';
    w.events.push({ type: 'Normal', reason: 'RolledBack', message: truncate(`rolled back, nothing delivered: ${w.message ?? 'rolled back'}`) });
  }
}

/** Failed sets no completionTime, so ttlAfterFinished never deletes a transaction that needs a human. */
function fail(w: Work, message: string, reason: string): void {
  w.phase = 'Failed';
  if (reason === 'InvalidSpec') w.refusedSpec = true;
  w.message = truncate(message);
  w.events.push(warning(reason, w.message));
}

function issueDeliveries(w: Work): void {
  for (const b of w.branches) {
    if (b.state === 'Delivered') continue;
    const next = parseTime(b.nextAttemptTime);
    if (next !== undefined && w.now < next) continue;
    countAttempt(b, w.now);
    b.state = 'Delivering';
    w.calls.push({ branch: b.name, method: 'Deliver', attempt: b.attempts });
  }
}

function issueCheck(w: Work): void {
  if (w.now < w.checkAt || !(w.now < w.deadline)) return;
  const c = w.check;
  const next = parseTime(c.nextAttemptTime);
  if (next !== undefined && w.now < next) return;
  // Either due, or the answer to the previous attempt was lost (the controller restarted): ask (again).
  c.attempts += 1;
  c.lastAttemptTime = iso(w.now);
  delete c.nextAttemptTime;
  w.calls.push({ branch: SOURCE_BRANCH, method: 'CheckPrepared', attempt: c.attempts });
}

function output(w: Work, prev: TransactionStatus): StepOutput {
  const terminal = isTerminalMessagePhase(w.phase);
  const calls = terminal ? [] : w.calls;
  const out: StepOutput = {
    status: buildStatus(w, prev),
    calls,
    // Write-ahead: no Deliver before the Deliver decision (and the attempt it counts) is stored.
    // CheckPrepared is a read-only question, safe to repeat: no write needed before it.
    persistBeforeCalls: calls.some((c) => c.method === 'Deliver'),
    events: w.events,
  };
  const requeue = terminal ? undefined : requeueAfter(w);
  if (requeue !== undefined) out.requeueAfterMs = requeue;
  return out;
}

function requeueAfter(w: Work): number | undefined {
  let earliest: number | undefined;
  const consider = (at: number | undefined) => {
    if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
  };
  if (w.decision === 'Deliver') {
    for (const b of w.branches) if (b.state !== 'Delivered') consider(parseTime(b.nextAttemptTime));
  } else if (!w.decision) {
    if (w.now < w.checkAt) consider(w.checkAt);
    else consider(parseTime(w.check.nextAttemptTime));
    consider(w.deadline);
  }
  return earliest === undefined ? undefined : Math.max(0, earliest - w.now);
}

function buildStatus(w: Work, prev: TransactionStatus): TransactionStatus {
  const s = basicStatus(w);
  const succeeded = succeededFor(w.phase, OUTCOMES, w.refusedSpec === true);
  const waiting =
    w.phase === 'Prepared'
      ? w.check.attempts === 0
        ? `Prepared: waiting for spec.message.decision (check-back from ${iso(w.checkAt)})`
        : `Prepared: waiting for spec.message.decision or a definite check-back answer (until ${iso(w.deadline)})`
      : `${w.phase}: delivering`;
  s.conditions = setCondition(
    prev.conditions,
    { type: 'Succeeded', ...succeeded, message: w.message ?? waiting, ...(w.generation !== undefined ? { observedGeneration: w.generation } : {}) },
    w.now,
  );
  s.branches = w.branches;
  s.progress = `${w.branches.filter((b) => b.state === 'Delivered').length}/${w.branches.length}`;
  if (w.check.attempts > 0) s.check = w.check;
  return s;
}

/**
 * The TCC (Try-Confirm/Cancel) state machine, as one pure step.
 *
 *   Trying ──every Try OK──────────────→ Confirming ──every Confirm OK──→ Committed
 *      └──a Try refused, or timeout──→ Cancelling ──every Cancel OK───→ Aborted
 *   Confirming/Cancelling ──retry budget spent──→ Failed (a human takes over)
 *
 * Safety rests on three rules:
 *  - the decision is taken once, from what is in status, and never changes;
 *  - the step that takes it asks the controller to persist before calling
 *    (write-ahead), and so does every later Confirm/Cancel retry, so the
 *    attempt counts that bound retries survive crashes too;
 *  - an outcome only counts if it answers the call status says is in flight
 *    (same branch, method of the current phase, current attempt, no retry
 *    scheduled yet); anything else is stale and ignored.
 *
 * "In flight" is encoded without extra fields: a branch that has attempts > 0,
 * is not done and has no nextAttemptTime is waiting for the answer to attempt
 * `attempts`. If that answer never comes (the controller crashed), the next step
 * treats the attempt as failed and re-issues the call at once (participants
 * are idempotent on (uid, branch, method)).
 */
import type { BranchState, BranchStatus, Decision, DistributedTransaction, TccPhase, TransactionStatus } from '../api/types.js';
import { setCondition } from './conditions.js';
import { resolveConfig, type ResolvedBranch, type ResolvedConfig } from './config.js';
import { abortAccepted, abortRefused, stepWithIntervention, type InterventionMode } from './intervention.js';
import { boundedText, iso, parseTime, truncate } from './text.js';
import { startTimeOf } from './start-time.js';
import type { Call, CallOutcome, EventIntent, Method, Step, StepInput, StepOutput } from './types.js';
import { basicStatus, countAttempt, dedupeOutcomes, effectiveKind, misconfigured, normalizeBranchStatus, refusedEvent, resetForNewMethod, type Outcomes, refuseBadClock, restoreBasics, scheduleRetry, succeededFor, unchanged, warning } from './common.js';

/** For the Succeeded condition. */
const OUTCOMES: Outcomes = { success: 'Committed', unsuccessful: ['Aborted'] };
const TERMINAL: ReadonlySet<string> = new Set<TccPhase>(['Committed', 'Aborted', 'Failed']);
const BRANCH_STATES: ReadonlySet<string> = new Set<BranchState>([
  'Pending',
  'Trying',
  'Prepared',
  'Refused',
  'Confirming',
  'Confirmed',
  'Cancelling',
  'Cancelled',
]);

export function isTerminalTccPhase(phase: string | undefined): boolean {
  return phase !== undefined && TERMINAL.has(phase);
}

/** Everything one step works on; branches are fresh copies, so the input is never modified. */
interface Work {
  /** Failed because the spec was refused before any call (condition reason InvalidSpec). */
  refusedSpec?: boolean;
  now: number;
  uid: string;
  generation?: number;
  cfg: ResolvedConfig;
  phase: TccPhase;
  decision?: Decision;
  startTime: string;
  deadline: number;
  decisionTime?: string;
  completionTime?: string;
  message?: string;
  branches: BranchStatus[];
  calls: Call[];
  events: EventIntent[];
}

/** How kubetx.io/retry and kubetx.io/abort apply to TCC (intervention.ts). */
const TCC_INTERVENTION: InterventionMode = {
  resumePhase: (d) => (d === 'Confirm' ? 'Confirming' : d === 'Cancel' ? 'Cancelling' : undefined),
  isSettled: (state, d) =>
    d === 'Confirm' ? state === 'Confirmed' : d === 'Cancel' ? state === 'Cancelled' : state === 'Prepared' || state === 'Refused',
  isFinished: (phase) => phase === 'Committed' || phase === 'Aborted',
};

export const stepTcc: Step = (input: StepInput): StepOutput => stepWithIntervention(input, TCC_INTERVENTION, stepTccCore);

function stepTccCore(input: StepInput, abortMessage: string | undefined): StepOutput {
  const prev: TransactionStatus = input.status && typeof input.status === 'object' ? input.status : {};
  // Terminal for the engine: nothing to call, nothing to change.
  if (isTerminalTccPhase(prev.phase)) return unchanged(prev);
  const badClock = refuseBadClock(input, prev);
  if (badClock) return badClock;
  const w = load(input, prev);

  for (const outcome of dedupeOutcomes(input.outcomes)) applyOutcome(w, outcome);

  if (w.cfg.errors.length > 0 && !w.decision) {
    const reason = `invalid spec: ${w.cfg.errors.join('; ')}`;
    // Before any Try nothing needs undoing; after one, roll back what may be reserved.
    if (w.branches.every((b) => b.attempts === 0 && b.state === 'Pending')) {
      fail(w, reason, 'InvalidSpec');
      return output(w, prev);
    }
    decide(w, 'Cancel', reason);
  }
  if (abortMessage !== undefined) {
    // After the outcomes, so Try results that Cancel needs are recorded first.
    if (w.decision) w.events.push(abortRefused(w.decision));
    else {
      w.events.push(abortAccepted(abortMessage));
      decide(w, 'Cancel', abortMessage);
    }
  }
  if (!w.decision) decideIfReady(w);

  if (w.decision) {
    const problem = inconsistency(w);
    if (problem) {
      fail(w, problem, 'InconsistentStatus');
      return output(w, prev);
    }
    if (w.branches.every((b) => isDone(w, b))) {
      finish(w);
      return output(w, prev);
    }
    const exhausted = budgetExhausted(w);
    if (exhausted) {
      fail(w, exhausted, 'RetryBudgetExhausted');
      return output(w, prev);
    }
  }

  issueDueCalls(w);
  return output(w, prev);
}

function load(input: StepInput, prev: TransactionStatus): Work {
  const tx: DistributedTransaction = input.tx;
  const now = input.now;
  const cfg = resolveConfig(tx);
  const startTime = startTimeOf(prev, tx, now);

  const previous = new Map<string, unknown>();
  if (Array.isArray(prev.branches)) {
    for (const b of prev.branches) {
      if (b && typeof b === 'object' && typeof b.name === 'string' && !previous.has(b.name)) previous.set(b.name, b);
    }
  }
  // Rebuilt from the spec's names: status entries for unknown branches are dropped, missing ones start Pending.
  const branches = cfg.branches.map((rb) => normalizeBranch(rb.name, previous.get(rb.name)));

  const decision = prev.decision === 'Confirm' || prev.decision === 'Cancel' ? prev.decision : inferDecision(prev, branches);
  const phase: TccPhase = decision === 'Confirm' ? 'Confirming' : decision === 'Cancel' ? 'Cancelling' : 'Trying';
  const w: Work = {
    now,
    uid: typeof tx?.metadata?.uid === 'string' ? tx.metadata.uid : '',
    cfg,
    phase,
    startTime,
    deadline: Date.parse(startTime) + cfg.timeoutMs,
    branches,
    calls: [],
    events: [],
  };
  if (decision) w.decision = decision;
  restoreBasics(w, tx, prev);
  return w;
}

/**
 * A status that lost its decision field (hand-edited, or written by an older
 * version) still shows what was acted on. A Cancelled branch means Cancel was
 * sent, so only Cancel can follow; a Confirmed one means Confirm was.
 */
function inferDecision(prev: TransactionStatus, branches: BranchStatus[]): Decision | undefined {
  if (prev.phase === 'Cancelling' || branches.some((b) => b.state === 'Cancelled' || b.state === 'Cancelling')) return 'Cancel';
  if (prev.phase === 'Confirming' || branches.some((b) => b.state === 'Confirmed' || b.state === 'Confirming')) return 'Confirm';
  return undefined;
}

function normalizeBranch(name: string, raw: unknown): BranchStatus {
  return normalizeBranchStatus(name, raw, BRANCH_STATES, true);
}

function currentMethod(w: Work): Method {
  return w.decision === 'Confirm' ? 'Confirm' : w.decision === 'Cancel' ? 'Cancel' : 'Try';
}

/** Done with the current method: nothing more will be called on this branch in this phase. */
function isDone(w: Work, b: BranchStatus): boolean {
  if (w.decision === 'Confirm') return b.state === 'Confirmed';
  if (w.decision === 'Cancel') return b.state === 'Cancelled';
  return b.state === 'Prepared' || b.state === 'Refused';
}

function resolved(w: Work, name: string): ResolvedBranch {
  return w.cfg.branches.find((rb) => rb.name === name)!;
}

function applyOutcome(w: Work, o: CallOutcome): void {
  const method = currentMethod(w);
  if (o.method !== method) return; // e.g. a late Try answer after the decision
  const b = w.branches.find((x) => x.name === o.branch);
  if (!b || isDone(w, b)) return;
  // Only the answer to the call in flight counts (see the file comment).
  if (o.attempt !== b.attempts || b.attempts === 0 || b.nextAttemptTime !== undefined) return;
  if (method === 'Try' && b.state !== 'Trying') return;

  const kind = effectiveKind(o);
  if (method === 'Cancel' && o.reason === 'EndpointMisconfigured' && b.endpointMisconfigured) {
    // The branch's only Try met an endpoint that serves no TCC participant, and so does its Cancel:
    // no Try ran there, so there is nothing to cancel.
    delete b.nextAttemptTime;
    delete b.lastError;
    b.state = 'Cancelled';
    return;
  }
  if (kind === 'ok') {
    delete b.nextAttemptTime;
    delete b.lastError;
    if (method === 'Try') {
      b.state = 'Prepared';
      if (typeof o.data === 'string') b.result = o.data;
      else delete b.result;
    } else {
      b.state = method === 'Confirm' ? 'Confirmed' : 'Cancelled';
    }
    return;
  }

  if (kind === 'refused' && method === 'Try') {
    // A business "no": the only outcome that rolls back by itself.
    b.state = 'Refused';
    b.lastError = boundedText(o.message, 'refused');
    w.events.push(refusedEvent(b, o));
    return;
  }

  // Retryable, timeout, unknown kinds, and a refused Confirm/Cancel (which is no business "no"): retry later.
  w.events.push(scheduleRetry(b, o, w.now, w.uid, method, resolved(w, b.name).retry));
}

function decideIfReady(w: Work): void {
  const refused = w.branches.find((b) => b.state === 'Refused');
  if (refused) {
    decide(w, 'Cancel', `branch ${refused.name}: Try refused: ${refused.lastError ?? 'no reason given'}`);
  } else if (w.branches.every((b) => b.state === 'Prepared')) {
    // Counts even if this step runs just past the deadline: every participant said yes and nothing was cancelled.
    decide(w, 'Confirm', `all ${w.branches.length} branches prepared`);
  } else if (!(w.now < w.deadline)) {
    const waiting = w.branches.filter((b) => b.state !== 'Prepared').map((b) => b.name);
    decide(w, 'Cancel', `timeout ${w.cfg.timeoutText} passed before every Try succeeded (waiting on: ${waiting.join(', ')})`);
  }
}

function decide(w: Work, decision: Decision, reason: string): void {
  w.decision = decision;
  w.phase = decision === 'Confirm' ? 'Confirming' : 'Cancelling';
  w.decisionTime = iso(w.now);
  w.message = truncate(reason);
  for (const b of w.branches) {
    const noTccThere = b.state === 'Refused' && misconfigured(b);
    resetForNewMethod(b);
    if (noTccThere) b.endpointMisconfigured = true;
  }
  const type = decision === 'Confirm' ? 'Normal' : 'Warning';
  w.events.push({ type, reason: 'Decided', message: truncate(`${decision}: ${reason}`) });
}

/** A status that contradicts its own decision cannot be carried through safely. */
function inconsistency(w: Work): string | undefined {
  if (w.decision === 'Confirm') {
    const b = w.branches.find((x) => x.state !== 'Prepared' && x.state !== 'Confirming' && x.state !== 'Confirmed');
    if (b) return `inconsistent status: decision is Confirm but branch ${b.name} is ${b.state} (no successful Try recorded)`;
  } else if (w.decision === 'Cancel') {
    const b = w.branches.find((x) => x.state === 'Confirmed');
    if (b) return `inconsistent status: decision is Cancel but branch ${b.name} is Confirmed`;
  }
  return undefined;
}

/**
 * A branch not done whose attempts reached maxAttempts: its last attempt failed,
 * or its answer was lost. Either way no further call is allowed, so that
 * maxAttempts bounds the calls made per branch and method, crashes included.
 */
function budgetExhausted(w: Work): string | undefined {
  const method = currentMethod(w);
  for (const b of w.branches) {
    const max = resolved(w, b.name).retry.maxAttempts;
    if (max > 0 && !isDone(w, b) && b.attempts >= max) {
      const why = b.nextAttemptTime !== undefined ? (b.lastError ?? 'call failed') : 'no answer to the last attempt';
      return `branch ${b.name}: ${method} failed ${b.attempts} times, retry budget spent: ${why}`;
    }
  }
  return undefined;
}

function finish(w: Work): void {
  w.completionTime = iso(w.now);
  const n = w.branches.length;
  if (w.decision === 'Confirm') {
    w.phase = 'Committed';
    w.message = `all ${n} branches confirmed`;
    w.events.push({ type: 'Normal', reason: 'Committed', message: w.message });
  } else {
    // The message keeps the reason for cancelling: that is what a user asks of an Aborted transaction.
    w.phase = 'Aborted';
    w.events.push(warning('Aborted', `all ${n} branches cancelled: ${w.message ?? 'cancelled'}`));
  }
}

/**
 * Failed keeps decision and attempts so a later "retry" (reset attempts) can
 * resume; it sets no completionTime so ttlAfterFinished never deletes a
 * transaction that needs a human.
 */
function fail(w: Work, message: string, reason: string): void {
  w.phase = 'Failed';
  if (reason === 'InvalidSpec') w.refusedSpec = true;
  w.message = truncate(message);
  w.events.push(warning(reason, w.message));
}

function issueDueCalls(w: Work): void {
  const method = currentMethod(w);
  if (method === 'Try' && !(w.now < w.deadline)) return;
  for (const b of w.branches) {
    if (isDone(w, b)) continue;
    const next = parseTime(b.nextAttemptTime);
    if (next !== undefined && w.now < next) continue;
    countAttempt(b, w.now);
    b.state = method === 'Try' ? 'Trying' : method === 'Confirm' ? 'Confirming' : 'Cancelling';
    const call: Call = { branch: b.name, method, attempt: b.attempts };
    if (method !== 'Try' && b.result !== undefined) call.result = b.result;
    w.calls.push(call);
  }
}

function output(w: Work, prev: TransactionStatus): StepOutput {
  const terminal = isTerminalTccPhase(w.phase);
  const calls = terminal ? [] : w.calls;
  const status = buildStatus(w, prev);
  const out: StepOutput = {
    status,
    calls,
    // Write-ahead: Confirm/Cancel calls only after the status that orders them (and counts them) is stored.
    // Try calls need no write: Try is safe to repeat, which keeps a clean run at two writes.
    persistBeforeCalls: calls.length > 0 && w.decision !== undefined,
    events: w.events,
  };
  const requeue = terminal ? undefined : requeueAfter(w);
  if (requeue !== undefined) out.requeueAfterMs = requeue;
  return out;
}

function requeueAfter(w: Work): number | undefined {
  let earliest: number | undefined;
  const consider = (at: number) => {
    if (earliest === undefined || at < earliest) earliest = at;
  };
  for (const b of w.branches) {
    const next = parseTime(b.nextAttemptTime);
    if (!isDone(w, b) && next !== undefined) consider(next);
  }
  if (!w.decision) consider(w.deadline);
  return earliest === undefined ? undefined : Math.max(0, earliest - w.now);
}

function buildStatus(w: Work, prev: TransactionStatus): TransactionStatus {
  const s = basicStatus(w);
  const succeeded = succeededFor(w.phase, OUTCOMES, w.refusedSpec === true);
  const cond = {
    type: 'Succeeded',
    ...succeeded,
    message: w.message ?? `${w.phase}: waiting for every branch's Try`,
    ...(w.generation !== undefined ? { observedGeneration: w.generation } : {}),
  };
  s.conditions = setCondition(prev.conditions, cond, w.now);
  s.branches = w.branches;
  // Branches done with the current phase (nothing more will be called on them in it) / all branches.
  s.progress = `${w.branches.filter((b) => isDone(w, b)).length}/${w.branches.length}`;
  return s;
}

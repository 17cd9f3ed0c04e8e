/**
 * The Saga state machine, as one pure step (same contract as TCC: types.ts).
 *
 *   Executing ──every Execute OK─────────────────────────→ Completed
 *      └──an Execute refused, timeout, or kubetx.io/abort──→ Compensating ──every Compensate OK──→ Compensated
 *   Compensating ──retry budget spent──→ Failed (a human takes over)
 *
 * Branches run Execute in `dependsOn` order: a branch starts once every
 * dependency is Executed; branches ready together are called together.
 * Branch states: Pending (never called) → Executing (called, no OK yet: it may
 * have happened) → Executed (OK, `result` kept) | Refused (a business "no":
 * did nothing, by contract) → Compensated. After the decision "Compensate",
 * Executing and Executed branches are compensated, dependents first; Pending
 * and Refused ones need nothing and keep their state (and Execute attempts).
 *
 * Safety, beyond TCC's rules (decision once, write-ahead, stale outcomes ignored):
 *  - write-ahead of "attempted": a step that first calls Execute on a Pending
 *    branch asks for a persist before calling, so a crash can never hide an
 *    Execute that may have happened (Pending branches are never compensated).
 *    That costs one write per wave of the DAG: 2 writes for independent branches.
 *  - no Execute once decided; Compensate(a) only once every branch depending on
 *    a, transitively, is Compensated or needs no compensation.
 *
 * "In flight" as in TCC: attempts > 0, not done, no nextAttemptTime.
 */
import type { BranchState, BranchStatus, Decision, DistributedTransaction, SagaPhase, TransactionStatus } from '../api/types.js';
import { setCondition } from './conditions.js';
import { resolveConfig, type ResolvedBranch, type ResolvedConfig } from './config.js';
import { buildDag, readySet, reverseReadySet, type Dag } from './dag.js';
import { abortAccepted, abortRefused, stepWithIntervention, type InterventionMode } from './intervention.js';
import { boundedText, iso, parseTime, truncate } from './text.js';
import { startTimeOf } from './start-time.js';
import type { Call, CallOutcome, EventIntent, Method, Step, StepInput, StepOutput } from './types.js';
import { basicStatus, countAttempt, dedupeOutcomes, effectiveKind, normalizeBranchStatus, refusedEvent, resetForNewMethod, type Outcomes, refuseBadClock, restoreBasics, scheduleRetry, succeededFor, unchanged, warning } from './common.js';

/** For the Succeeded condition. */
const OUTCOMES: Outcomes = { success: 'Completed', unsuccessful: ['Compensated'] };
const TERMINAL: ReadonlySet<string> = new Set<SagaPhase>(['Completed', 'Compensated', 'Failed']);
const BRANCH_STATES: ReadonlySet<string> = new Set<BranchState>(['Pending', 'Executing', 'Executed', 'Refused', 'Compensating', 'Compensated']);

export function isTerminalSagaPhase(phase: string | undefined): boolean {
  return phase !== undefined && TERMINAL.has(phase);
}

/** Execute may have happened on a branch in this state, so it is (or was) owed a Compensate. */
export function mayHaveExecuted(state: string): boolean {
  return state === 'Executing' || state === 'Executed' || state === 'Compensating' || state === 'Compensated';
}

/** Nothing more is owed to this branch once compensation is decided. */
const settledAfterDecision = (state: string) => state === 'Compensated' || !mayHaveExecuted(state);

const SAGA_INTERVENTION: InterventionMode = {
  resumePhase: (d) => (d === 'Compensate' ? 'Compensating' : undefined),
  isSettled: (state, d) => (d === 'Compensate' ? settledAfterDecision(state) : state === 'Executed' || state === 'Refused'),
  isFinished: (phase) => phase === 'Completed' || phase === 'Compensated',
};

interface Work {
  /** Failed because the spec was refused before any call (condition reason InvalidSpec). */
  refusedSpec?: boolean;
  now: number;
  uid: string;
  generation?: number;
  cfg: ResolvedConfig;
  dag: Dag;
  dagErrors: string[];
  phase: SagaPhase;
  decision?: Decision;
  startTime: string;
  deadline: number;
  decisionTime?: string;
  completionTime?: string;
  message?: string;
  branches: BranchStatus[];
  calls: Call[];
  events: EventIntent[];
  /** Some call of this step must not be made before this step's status is stored. */
  writeAhead: boolean;
}

export const stepSaga: Step = (input: StepInput): StepOutput => stepWithIntervention(input, SAGA_INTERVENTION, stepSagaCore);

function stepSagaCore(input: StepInput, abortMessage: string | undefined): StepOutput {
  const prev: TransactionStatus = input.status && typeof input.status === 'object' ? input.status : {};
  if (isTerminalSagaPhase(prev.phase)) return unchanged(prev);
  const badClock = refuseBadClock(input, prev);
  if (badClock) return badClock;
  const w = load(input, prev);
  if (w.dagErrors.length > 0) {
    // Without a valid order nothing can be run or compensated safely: a human must look.
    fail(w, `invalid spec: ${w.dagErrors.join('; ')}`, 'InvalidSpec');
    return output(w, prev);
  }

  for (const o of dedupeOutcomes(input.outcomes)) applyOutcome(w, o);

  if (w.cfg.errors.length > 0 && !w.decision) {
    const reason = `invalid spec: ${w.cfg.errors.join('; ')}`;
    if (w.branches.every((b) => b.state === 'Pending')) {
      fail(w, reason, 'InvalidSpec');
      return output(w, prev);
    }
    decide(w, reason);
  }
  if (abortMessage !== undefined) {
    // After the outcomes, so Execute results that Compensate needs are recorded first.
    if (w.decision) w.events.push(abortRefused(w.decision));
    else {
      w.events.push(abortAccepted(abortMessage));
      decide(w, abortMessage);
    }
  }
  if (!w.decision) {
    decideIfReady(w);
    if (w.phase === 'Completed') return output(w, prev);
  }
  if (w.decision) {
    if (w.branches.every((b) => settledAfterDecision(b.state))) {
      finishCompensated(w);
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
  const cfg = resolveConfig(tx);
  const specList: unknown[] = Array.isArray(tx?.spec?.branches) ? tx.spec.branches : [];
  const { dag, errors } = buildDag(
    cfg.branches.map((rb) => ({ name: rb.name, dependsOn: rb.spec.dependsOn, index: specList.indexOf(rb.spec) })),
  );
  const startTime = startTimeOf(prev, tx, input.now);
  const previous = new Map<string, unknown>();
  for (const b of Array.isArray(prev.branches) ? prev.branches : []) {
    if (b && typeof b === 'object' && typeof b.name === 'string' && !previous.has(b.name)) previous.set(b.name, b);
  }
  const branches = cfg.branches.map((rb) => normalizeBranch(rb.name, previous.get(rb.name)));
  // A status that lost its decision still shows one was acted on.
  const decided = prev.decision === 'Compensate' || prev.phase === 'Compensating' || branches.some((b) => b.state === 'Compensated' || b.state === 'Compensating');
  const w: Work = {
    now: input.now,
    uid: typeof tx?.metadata?.uid === 'string' ? tx.metadata.uid : '',
    cfg,
    dag,
    dagErrors: errors,
    phase: decided ? 'Compensating' : 'Executing',
    startTime,
    deadline: Date.parse(startTime) + cfg.timeoutMs,
    branches,
    calls: [],
    events: [],
    writeAhead: false,
  };
  if (decided) w.decision = 'Compensate';
  restoreBasics(w, tx, prev);
  return w;
}

function normalizeBranch(name: string, raw: unknown): BranchStatus {
  return normalizeBranchStatus(name, raw, BRANCH_STATES, true);
}

function resolved(w: Work, name: string): ResolvedBranch {
  return w.cfg.branches.find((rb) => rb.name === name)!;
}

function stateOf(w: Work, name: string): string {
  return w.branches.find((b) => b.name === name)!.state;
}

function applyOutcome(w: Work, o: CallOutcome): void {
  const method: Method = w.decision ? 'Compensate' : 'Execute';
  if (o.method !== method) return; // e.g. a late Execute answer after the decision
  const b = w.branches.find((x) => x.name === o.branch);
  if (!b) return;
  if (method === 'Execute' ? b.state !== 'Executing' : b.state !== 'Compensating') return;
  // Only the answer to the call in flight counts.
  if (o.attempt !== b.attempts || b.attempts === 0 || b.nextAttemptTime !== undefined) return;

  const kind = effectiveKind(o);
  if (kind === 'ok') {
    delete b.lastError;
    if (method === 'Execute') {
      b.state = 'Executed';
      if (typeof o.data === 'string') b.result = o.data;
      else delete b.result;
    } else {
      b.state = 'Compensated';
    }
    return;
  }
  if (kind === 'refused' && method === 'Execute') {
    b.state = 'Refused';
    b.lastError = boundedText(o.message, 'refused');
    w.events.push(refusedEvent(b, o));
    return;
  }
  // Retryable, timeout, unknown kinds, and a refused Compensate (no business "no"): retry later.
  w.events.push(scheduleRetry(b, o, w.now, w.uid, method, resolved(w, b.name).retry));
}

function decideIfReady(w: Work): void {
  const refused = w.branches.find((b) => b.state === 'Refused');
  if (refused) {
    decide(w, `branch ${refused.name}: Execute refused: ${refused.lastError ?? 'no reason given'}`);
  } else if (w.branches.every((b) => b.state === 'Executed')) {
    // Counts even just past the deadline: every step is done and nothing was compensated.
    w.phase = 'Completed';
    w.completionTime = iso(w.now);
    w.message = `all ${w.branches.length} branches executed`;
    w.events.push({ type: 'Normal', reason: 'Completed', message: w.message });
  } else if (!(w.now < w.deadline)) {
    const waiting = w.branches.filter((b) => b.state !== 'Executed').map((b) => b.name);
    decide(w, `timeout ${w.cfg.timeoutText} passed before every Execute succeeded (waiting on: ${waiting.join(', ')})`);
  }
}

function decide(w: Work, reason: string): void {
  w.decision = 'Compensate';
  w.phase = 'Compensating';
  w.decisionTime = iso(w.now);
  w.message = truncate(reason);
  w.writeAhead = true;
  // Compensate attempts are counted afresh; branches needing none keep their Execute history.
  for (const b of w.branches) if (mayHaveExecuted(b.state)) resetForNewMethod(b);
  w.events.push(warning('Decided', `Compensate: ${reason}`));
}

/** A branch owed a Compensate whose attempts reached maxAttempts: no further call is allowed (crashes included). */
function budgetExhausted(w: Work): string | undefined {
  for (const b of w.branches) {
    const max = resolved(w, b.name).retry.maxAttempts;
    if (max > 0 && !settledAfterDecision(b.state) && b.attempts >= max) {
      const why = b.nextAttemptTime !== undefined ? (b.lastError ?? 'call failed') : 'no answer to the last attempt';
      return `branch ${b.name}: Compensate failed ${b.attempts} times, retry budget spent: ${why}`;
    }
  }
  return undefined;
}

function finishCompensated(w: Work): void {
  w.phase = 'Compensated';
  w.completionTime = iso(w.now);
  const n = w.branches.filter((b) => b.state === 'Compensated').length;
  // The message keeps the reason for compensating: that is what a user asks of a Compensated saga.
  w.events.push(warning('Compensated', `${n} branch(es) compensated: ${w.message ?? 'compensated'}`));
}

/** Failed keeps decision and attempts (kubetx.io/retry resumes); no completionTime, so ttlAfterFinished never deletes it. */
function fail(w: Work, message: string, reason: string): void {
  w.phase = 'Failed';
  if (reason === 'InvalidSpec') w.refusedSpec = true;
  w.message = truncate(message);
  w.events.push(warning(reason, w.message));
}

const isDue = (w: Work, b: BranchStatus) => {
  const next = parseTime(b.nextAttemptTime);
  return next === undefined || !(w.now < next);
};

function issueDueCalls(w: Work): void {
  let due: BranchStatus[];
  if (!w.decision) {
    if (!(w.now < w.deadline)) return;
    const starting = new Set(readySet(w.dag, (n) => stateOf(w, n) === 'Pending', (n) => stateOf(w, n) === 'Executed'));
    due = w.branches.filter((b) => starting.has(b.name) || (b.state === 'Executing' && isDue(w, b)));
    if (starting.size > 0) w.writeAhead = true;
  } else {
    const owed = (n: string) => !settledAfterDecision(stateOf(w, n));
    const ready = new Set(reverseReadySet(w.dag, owed, (n) => settledAfterDecision(stateOf(w, n))));
    due = w.branches.filter((b) => ready.has(b.name) && isDue(w, b));
  }
  for (const b of due) {
    const method: Method = w.decision ? 'Compensate' : 'Execute';
    countAttempt(b, w.now);
    b.state = method === 'Execute' ? 'Executing' : 'Compensating';
    const call: Call = { branch: b.name, method, attempt: b.attempts };
    if (method === 'Compensate' && b.result !== undefined) call.result = b.result;
    w.calls.push(call);
  }
}

function output(w: Work, prev: TransactionStatus): StepOutput {
  const terminal = isTerminalSagaPhase(w.phase);
  const calls = terminal ? [] : w.calls;
  const out: StepOutput = {
    status: buildStatus(w, prev),
    calls,
    // Write-ahead: the decision and Compensate attempt counts, and the first Execute of a branch.
    persistBeforeCalls: calls.length > 0 && (w.writeAhead || w.decision !== undefined),
    events: w.events,
  };
  const requeue = terminal ? undefined : requeueAfter(w);
  if (requeue !== undefined) out.requeueAfterMs = requeue;
  return out;
}

function requeueAfter(w: Work): number | undefined {
  let earliest: number | undefined;
  for (const b of w.branches) {
    const waiting = w.decision ? !settledAfterDecision(b.state) : b.state === 'Executing';
    const next = parseTime(b.nextAttemptTime);
    if (waiting && next !== undefined && (earliest === undefined || next < earliest)) earliest = next;
  }
  if (!w.decision && (earliest === undefined || w.deadline < earliest)) earliest = w.deadline;
  return earliest === undefined ? undefined : Math.max(0, earliest - w.now);
}

function buildStatus(w: Work, prev: TransactionStatus): TransactionStatus {
  const s = basicStatus(w);
  const succeeded = succeededFor(w.phase, OUTCOMES, w.refusedSpec === true);
  const cond = {
    type: 'Succeeded',
    ...succeeded,
    message: w.message ?? `${w.phase}: waiting for every branch's Execute`,
    ...(w.generation !== undefined ? { observedGeneration: w.generation } : {}),
  };
  s.conditions = setCondition(prev.conditions, cond, w.now);
  s.branches = w.branches;
  // Branches done with the current phase / all branches. Forward: Executed. Compensating: compensated,
  // or never executed (nothing to undo).
  const done = w.decision ? w.branches.filter((b) => settledAfterDecision(b.state)) : w.branches.filter((b) => b.state === 'Executed');
  s.progress = `${done.length}/${w.branches.length}`;
  return s;
}

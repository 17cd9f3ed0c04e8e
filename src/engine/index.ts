/**
 * The engine's entry point: one pure `step` for every mode.
 *
 * Dispatches on spec.mode. An unknown mode fails visibly (phase Failed, a
 * Warning event) rather than sit Pending forever with no explanation.
 */
import type { TransactionStatus } from '../api/types.js';
import { setCondition } from './conditions.js';
import { truncate } from './text.js';
import { startTimeOf } from './start-time.js';
import { stepTcc } from './tcc.js';
import { DEFAULT_CALL_HISTORY, withHistory, type CallHistory } from './history.js';
import { stepSaga } from './saga.js';
import { makeStepMessage, type MessageEngineOptions } from './message.js';
import { stepNotify } from './notify.js';
import type { Step, StepInput, StepOutput } from './types.js';
import { withFailureReport } from './failure-report.js';
import { withStalled, type StallOptions } from './stalled.js';

export type * from './types.js';
export { stepTcc, isTerminalTccPhase } from './tcc.js';
export { stepSaga, isTerminalSagaPhase, mayHaveExecuted } from './saga.js';
export {
  buildDag,
  descendants,
  readySet,
  reverseReadySet,
  reverseTopologicalOrder,
  topologicalOrder,
  type Dag,
  type DagCheck,
  type DagNodeSpec,
} from './dag.js';
export { ABORT_ANNOTATION, RETRY_ANNOTATION, MAX_ACK, MIN_INTERVENTION_INTERVAL_MS, ackValue, stepWithIntervention, type InterventionMode } from './intervention.js';
export {
  stepMessage,
  makeStepMessage,
  isTerminalMessagePhase,
  SOURCE_BRANCH,
  DEFAULT_CHECK_AFTER_MS,
  type CheckTimeoutAction,
  type MessageEngineOptions,
} from './message.js';
export {
  stepNotify,
  isTerminalNotifyPhase,
  resolveNotify,
  notifyDelayMs,
  DEFAULT_NOTIFY_SCHEDULE,
  DEFAULT_NOTIFY_MAX_ATTEMPTS,
  MIN_NOTIFY_DELAY_MS,
  type ResolvedNotify,
} from './notify.js';
export {
  DEFAULTS,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  MIN_CALL_TIMEOUT_MS,
  MIN_CHECK_AFTER_MS,
  MIN_TIMEOUT_MS,
  formatDuration,
  parseDuration,
  parseDurationField,
} from './duration.js';
export {
  MIN_DELAY_MS,
  baseDelayMs,
  defaultRetryPolicy,
  effectiveRetryPolicy,
  jitterFraction,
  retryDelayMs,
  type JitterKey,
  type ResolvedRetryPolicy,
} from './backoff.js';
export { getCondition, setCondition, type ConditionInput } from './conditions.js';
export { resolveConfig, type ResolvedBranch, type ResolvedConfig } from './config.js';
export { MAX_TEXT, truncate } from './text.js';
export { CALL_HISTORY_LEVELS, DEFAULT_CALL_HISTORY, MAX_HISTORY, MAX_HISTORY_MESSAGE, boundHistory, normalizeHistory, record as historyRecord, withHistory, type CallHistory } from './history.js';
export { DEFAULT_STALL_AFTER_ATTEMPTS, DEFAULT_STALL_AFTER_MS, STALLED, type StallOptions } from './stalled.js';
export { resumeHint } from './failure-report.js';
export { startTimeOf, conservativeStart } from './start-time.js';

/** Operator-wide engine settings (flags), fixed at start. */
export interface EngineOptions {
  message?: MessageEngineOptions;
  stall?: StallOptions;
  /** Which answers status.branches[].history records (--call-history). @default DEFAULT_CALL_HISTORY */
  callHistory?: CallHistory;
}

/** The one step for every mode, with the operator's engine settings. */
export function makeStep(options: EngineOptions = {}): Step {
  const stepMessage = makeStepMessage(options.message);
  return (input) => dispatch(input, stepMessage, options.stall, options.callHistory ?? DEFAULT_CALL_HISTORY);
}

/** The step with default settings. */
export const step: Step = makeStep();

function dispatch(input: StepInput, stepMessage: Step, stall: StallOptions | undefined, callHistory: CallHistory): StepOutput {
  try {
    const mode: unknown = input?.tx?.spec?.mode;
    const step = mode === 'TCC' ? stepTcc : mode === 'Saga' ? stepSaga : mode === 'Message' ? stepMessage : mode === 'Notify' ? stepNotify : undefined;
    if (!step) return unsupportedMode(input, mode);
    // What the status says about failures is the same for every mode.
    return withStalled(input, withFailureReport(input, withHistory(input, step(input), callHistory)), stall);
  } catch (err) {
    // Last line of defence: a bug must not crash the controller, nor retry blindly every minute forever.
    try {
      return engineFailed(input, err);
    } catch {
      // Not even Failed can be written (e.g. a non-finite clock): leave the status, look again later.
      return { status: safeStatus(input), calls: [], persistBeforeCalls: false, requeueAfterMs: ENGINE_ERROR_REQUEUE_MS, events: [] };
    }
  }
}

/** How long to wait before stepping again when even the Failed status could not be built. */
const ENGINE_ERROR_REQUEUE_MS = 60_000;

/**
 * An exception in the engine (a bug, or an input it could not handle) ends the
 * transaction as Failed, visibly: condition Succeeded=False reason EngineError
 * with the error text, one Warning Event. The decision is kept, so a Failed
 * transaction that had decided resumes on `kubectl dtx retry`.
 */
function engineFailed(input: StepInput, err: unknown): StepOutput {
  const prev: TransactionStatus = safeStatus(input);
  const reason = 'EngineError';
  const message = truncate(`engine error: ${errorText(err)}`);
  if (prev.phase === 'Failed' && prev.message === message) return { status: prev, calls: [], persistBeforeCalls: false, events: [] };
  const status: TransactionStatus = {
    ...prev,
    phase: 'Failed',
    message,
    conditions: setCondition(prev.conditions, { type: 'Succeeded', status: 'False', reason, message }, input.now),
  };
  return { status, calls: [], persistBeforeCalls: false, events: [{ type: 'Warning', reason, message }] };
}

function safeStatus(input: StepInput): TransactionStatus {
  const s: unknown = input?.status;
  return s && typeof s === 'object' && !Array.isArray(s) ? (s as TransactionStatus) : {};
}

function errorText(err: unknown): string {
  try {
    return err instanceof Error ? err.message || err.name : String(err);
  } catch {
    return 'unprintable error';
  }
}

function unsupportedMode(input: StepInput, mode: unknown): StepOutput {
  const prev: TransactionStatus = input.status ?? {};
  if (prev.phase === 'Failed') return { status: prev, calls: [], persistBeforeCalls: false, events: [] };
  const message =
    mode === undefined || mode === ''
      ? 'spec.mode is not set'
      : truncate(`spec.mode ${JSON.stringify(mode)} is not supported by this operator version (TCC, Saga, Message, Notify)`);
  const generation = input.tx?.metadata?.generation;
  const status: TransactionStatus = {
    ...prev,
    phase: 'Failed',
    message,
    conditions: setCondition(
      prev.conditions,
      {
        type: 'Succeeded',
        status: 'False',
        reason: 'Failed',
        message,
        ...(typeof generation === 'number' ? { observedGeneration: generation } : {}),
      },
      input.now,
    ),
  };
  status.startTime = startTimeOf(prev, input.tx, input.now);
  if (typeof generation === 'number') status.observedGeneration = generation;
  return {
    status,
    calls: [],
    persistBeforeCalls: false,
    events: [{ type: 'Warning', reason: 'ModeNotSupported', message }],
  };
}

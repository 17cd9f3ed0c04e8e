/**
 * The contract of the transaction state machine.
 *
 * The engine is a pure function: (transaction, persisted status, outcomes of the
 * calls made since, now) → (next status, calls to make, when to look again).
 * It reads no clock, does no I/O and keeps no state between steps: everything it
 * knows is in its input, so the controller can crash between any two steps and
 * resume from the last persisted status.
 *
 * The controller drives it in a loop inside one reconcile:
 *   step → (persist if `persistBeforeCalls`) → make `calls` → step with their outcomes → …
 * until a step returns no calls; then it persists the status if it changed and
 * requeues after `requeueAfterMs`.
 */
import type { BranchSpec, BrokerDelivery, DistributedTransaction, TransactionStatus } from '../api/types.js';

/** CheckPrepared asks the message source (spec.message.source); its Call uses the reserved branch name "@source". */
export type Method = 'Try' | 'Confirm' | 'Cancel' | 'Execute' | 'Compensate' | 'Deliver' | 'CheckPrepared';

/** One gRPC call the controller must make now. */
export interface Call {
  branch: string;
  method: Method;
  /** 1-based attempt number of this method on this branch, as sent in BranchRequest.attempt. */
  attempt: number;
  /** base64 of the branch's Try/Execute result, for Confirm/Cancel/Compensate. */
  result?: string;
}

/**
 * How a call ended, classified by src/participants (API.md):
 * ok = gRPC OK; refused = ABORTED or FAILED_PRECONDITION from Try/Execute;
 * retryable = any other status or a transport error; timeout = the call's deadline passed.
 */
export type OutcomeKind = 'ok' | 'refused' | 'retryable' | 'timeout';

export interface CallOutcome {
  branch: string;
  method: Method;
  attempt: number;
  kind: OutcomeKind;
  /** Participant's message or the error text (no payloads). */
  message?: string;
  /** base64 of BranchResponse.data (Try/Execute only). */
  data?: string;
  /** CheckPrepared only, when kind is ok: the source's answer. */
  checkState?: 'COMMITTED' | 'ROLLED_BACK' | 'UNKNOWN';
  /** When the call finished (ms since epoch), measured by the controller. */
  finishedAt: number;
  /**
   * Why a failure can never succeed as the endpoint stands (src/participants/classify.ts):
   * on Try/Execute it comes with kind "refused"; on later methods with "retryable", and the
   * transaction is marked Stalled at once.
   */
  reason?: 'EndpointMisconfigured' | 'InvalidArgument';
  /** Deliver on a broker branch, when kind is ok: where the broker stored the message (kept in the branch's status). */
  delivery?: BrokerDelivery;
}

/** Something worth a Kubernetes Event; the controller aggregates repeats. */
export interface EventIntent {
  type: 'Normal' | 'Warning';
  /** CamelCase, e.g. Decided, Committed, Aborted, CallFailed, RetryBudgetExhausted. */
  reason: string;
  message: string;
  /** The branch and method the Event is about: repeats form one series per (reason, branch, method). */
  branch?: string;
  method?: Method;
}

export interface StepInput {
  tx: DistributedTransaction;
  /** The status as last persisted (or as built by the previous step of this reconcile). */
  status: TransactionStatus | undefined;
  /** Outcomes of the calls returned by the previous step; [] on the first step. */
  outcomes: CallOutcome[];
  /** ms since epoch. */
  now: number;
}

export interface StepOutput {
  status: TransactionStatus;
  calls: Call[];
  /**
   * True when this step took a decision (or otherwise changed something that
   * must survive a crash before any of `calls` is made): the controller writes
   * the status first and makes the calls only if the write succeeded.
   */
  persistBeforeCalls: boolean;
  /** Look again after this long (earliest nextAttemptTime, the forward timeout, ...); undefined = nothing pending. */
  requeueAfterMs?: number;
  events: EventIntent[];
}

export type Step = (input: StepInput) => StepOutput;

export type { BranchSpec };

/**
 * The DistributedTransaction resource (kubetx.io/v1alpha1) as TypeScript types.
 *
 * These mirror crds/kubetx.io_distributedtransactions.yaml; the CRD's schema is
 * what the API server enforces, these types are what the operator reads and
 * writes. docs/api-reference.md describes every field for users.
 */

export const GROUP = 'kubetx.io';
export const VERSION = 'v1alpha1';
export const KIND = 'DistributedTransaction';
export const PLURAL = 'distributedtransactions';
export const API_VERSION = `${GROUP}/${VERSION}`;

export type Mode = 'TCC' | 'Saga' | 'Message' | 'Notify';

/** A Go-style duration string as written in the spec, e.g. "30s", "1m30s", "250ms". */
export type DurationString = string;

export interface ServiceRef {
  name: string;
  port: number;
  /** Namespace of the Service; defaults to the transaction's. Other namespaces only if the operator allows it. */
  namespace?: string;
}

export interface TlsConfig {
  secretName: string;
  serverName?: string;
}

export interface Endpoint {
  service?: ServiceRef;
  /** host:port; refused unless the operator runs with raw addresses allowed. */
  address?: string;
  tls?: TlsConfig;
}

export interface RetryPolicy {
  /** @default "1s" */
  initialInterval?: DurationString;
  /** @default "5m" */
  maxInterval?: DurationString;
  /** @default 2 */
  multiplier?: number;
  /** 0 = no limit. When reached the transaction goes Failed. @default 0 */
  maxAttempts?: number;
}

export interface PayloadFrom {
  secretKeyRef: { name: string; key: string };
}

/**
 * A broker destination (Message and Notify branches only), instead of an endpoint: the
 * committed message is published to NATS JetStream (or, while NATS is unhealthy, to the
 * sharded Redis fallback) on the operator's broker connection (--nats-url, --redis-url).
 * The tenant names only the subject inside its own namespace: kubetx publishes to
 * `<--broker-subject-prefix>.<namespace>.<subject>`, so no tenant can write another's subjects.
 */
export interface BrokerDestination {
  /** NATS subject tokens ([A-Za-z0-9_-], dot-separated, no wildcards), at most 200 characters. */
  subject: string;
  /** Orders messages (per-key order) and picks the Redis shard; at most 256 characters, no control characters. @default the transaction's name */
  key?: string;
  /** The JetStream stream that must store the message (JetStream's expected-stream check); publish is refused if another stream captures the subject. */
  stream?: string;
}

export interface BranchSpec {
  name: string;
  /** Exactly one of endpoint or broker (broker: Message and Notify only). */
  endpoint?: Endpoint;
  broker?: BrokerDestination;
  operation?: string;
  payload?: unknown;
  /** Deadline of one gRPC call. @default "5s" */
  callTimeout?: DurationString;
  /** Instead of payload: read at call time from a labelled Secret (payload-secret.ts). */
  payloadFrom?: PayloadFrom;
  /** Saga only. */
  dependsOn?: string[];
  retry?: RetryPolicy;
}

export interface MessageSpec {
  source: { endpoint: Endpoint; operation?: string };
  checkAfter?: DurationString;
  decision?: '' | 'Commit' | 'Rollback';
}

export interface NotifySpec {
  schedule?: DurationString[];
  maxAttempts?: number;
}

export interface TransactionSpec {
  mode: Mode;
  /** Forward-phase deadline, from creation. @default "30s" */
  timeout?: DurationString;
  payload?: unknown;
  /** Instead of payload: read at call time from a labelled Secret. */
  payloadFrom?: PayloadFrom;
  retry?: RetryPolicy;
  ttlAfterFinished?: DurationString;
  branches: BranchSpec[];
  message?: MessageSpec;
  notify?: NotifySpec;
}

export type TccPhase = 'Pending' | 'Trying' | 'Confirming' | 'Committed' | 'Cancelling' | 'Aborted' | 'Failed';
export type SagaPhase = 'Pending' | 'Executing' | 'Completed' | 'Compensating' | 'Compensated' | 'Failed';
/** Message: Prepared → (check-back) → Delivering → Delivered, or → RolledBack; Failed. */
export type MessagePhase = 'Prepared' | 'Delivering' | 'Delivered' | 'RolledBack' | 'Failed';
/** Notify: Notifying → Delivered, or Exhausted (a branch reached notify.maxAttempts); Failed (invalid spec). */
export type NotifyPhase = 'Notifying' | 'Delivered' | 'Exhausted' | 'Failed';
export type Phase = TccPhase | SagaPhase | MessagePhase | NotifyPhase;

/**
 * What the transaction decided. Persisted before the first call that acts on it (write-ahead).
 * Saga: Compensate (a Saga that succeeds decides nothing: it has no second phase).
 */
export type Decision = 'Confirm' | 'Cancel' | 'Compensate' | MessageDecision;
/** Message mode's decision: Deliver (the upstream committed) or Rollback (it did not). */
export type MessageDecision = 'Deliver' | 'Rollback';

/**
 * Per-branch state. TCC: Pending → Trying (a Try was sent, no answer or a
 * retryable failure yet) → Prepared (Try OK) | Refused (Try refused) →
 * Confirming | Cancelling (the second-phase call was sent, not yet answered OK;
 * a failing one records lastError and nextAttemptTime) → Confirmed | Cancelled.
 */
export type BranchState =
  | 'Pending'
  | 'Trying'
  | 'Prepared'
  | 'Refused'
  | 'Confirming'
  | 'Confirmed'
  | 'Cancelling'
  | 'Cancelled'
  | SagaBranchState
  | MessageBranchState;
/**
 * Saga branches: Pending (Execute never called) → Executing (called, no OK yet:
 * it may have happened) → Executed (OK) | Refused (refused: did nothing) →
 * Compensating (Compensate sent, not yet answered OK) → Compensated. Pending
 * and Refused branches need no compensation and keep their state after the
 * decision to compensate.
 */
export type SagaBranchState = 'Executing' | 'Executed' | 'Compensating' | 'Compensated';
/**
 * Message and Notify branches: Pending → Delivering (a Deliver was sent, not
 * yet answered OK) → Delivered; Notify only: → Exhausted (notify.maxAttempts
 * reached without an OK).
 */
export type MessageBranchState = 'Delivering' | 'Delivered' | 'Exhausted';

export interface BranchStatus {
  name: string;
  state: BranchState;
  /** Attempts of the branch's current method (Try/Execute before the decision, Confirm/Cancel/Compensate after it). */
  attempts: number;
  /** Every attempt of the current method, including those before a kubetx.io/retry reset `attempts`; present once a retry did. */
  totalAttempts?: number;
  lastError?: string;
  /** RFC 3339. */
  lastAttemptTime?: string;
  /** RFC 3339: the earliest time the current method is called again. */
  nextAttemptTime?: string;
  /** base64 of what Try/Execute returned in `data` (≤ 4 KiB). */
  result?: string;
  /**
   * TCC: the branch's first Try was answered EndpointMisconfigured (its endpoint serves no
   * TCC participant), so no Try ran there; a Cancel answered the same way counts as done.
   */
  endpointMisconfigured?: boolean;
  /** The answers to the branch's last calls (at most 10, oldest first), for humans (`kubectl dtx show`). */
  history?: CallRecord[];
  /** Broker branches: where the message was stored, as the broker acknowledged it. */
  delivery?: BrokerDelivery;
}

/** A broker's acknowledgement of a branch's message (status.branches[].delivery). */
export interface BrokerDelivery {
  /** nats (JetStream) or redis (the fallback queues). */
  route: 'nats' | 'redis';
  /** The JetStream stream, or the Redis stream key. */
  stream: string;
  /** The JetStream sequence number, or the Redis entry id. */
  sequence: string;
  /** The broker had it already (a republish inside the dedup window answered with the first copy's ack). */
  duplicate?: boolean;
}

/** One answered call of a branch, as recorded in status.branches[].history. */
export interface CallRecord {
  /** The attempt number sent (BranchRequest.attempt). */
  attempt: number;
  /** Try, Confirm, Cancel, Execute, Compensate, Deliver. */
  method: string;
  /** RFC 3339 with milliseconds: when the call finished. */
  time: string;
  /** How the call ended: ok, refused, retryable or timeout. */
  outcome: string;
  /** Why a failure cannot succeed as the endpoint stands (EndpointMisconfigured, InvalidArgument), when known. */
  code?: string;
  /** The participant's message or the error text, at most 256 characters. */
  message?: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface TransactionStatus {
  phase?: Phase;
  decision?: Decision;
  observedGeneration?: number;
  startTime?: string;
  decisionTime?: string;
  completionTime?: string;
  message?: string;
  conditions?: Condition[];
  branches?: BranchStatus[];
  /** Done/total, for the printer column (e.g. "3/4"). */
  progress?: string;
  /** The kubetx.io/retry annotation value last acted on (at most 1024 characters). */
  retryAcknowledged?: string;
  /** The kubetx.io/abort annotation value last acted on (at most 1024 characters). */
  abortAcknowledged?: string;
  /** RFC 3339: when the last retry/abort request was acted on (requests are acted on at most once per MIN_INTERVENTION_INTERVAL_MS). */
  interventionTime?: string;
  /** Message mode: the check-back of spec.message.source (CheckPrepared), once one was made. */
  check?: MessageCheckStatus;
}

/** What the operator asked the message source and when; a fixed set of fields however many checks run. */
export interface MessageCheckStatus {
  /** CheckPrepared calls made so far. */
  attempts: number;
  /** The last answer received: COMMITTED, ROLLED_BACK or UNKNOWN (absent while no call has answered). */
  lastAnswer?: 'COMMITTED' | 'ROLLED_BACK' | 'UNKNOWN';
  /** The last failed call (bounded). */
  lastError?: string;
  /** RFC 3339. */
  lastAttemptTime?: string;
  /** RFC 3339: the earliest time the source is asked again. */
  nextAttemptTime?: string;
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
  finalizers?: string[];
}

export interface DistributedTransaction {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: TransactionSpec;
  status?: TransactionStatus;
}

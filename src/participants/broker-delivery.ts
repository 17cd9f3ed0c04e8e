/**
 * Deliver on a broker branch (spec.branches[].broker): instead of a gRPC call,
 * the committed message is published through the BrokerRouter (NATS
 * JetStream, or the sharded Redis fallback while NATS is unhealthy) and the
 * broker's ack becomes the branch's status.branches[].delivery.
 *
 * - Subjects are the tenant's own: `<subjectPrefix>.<namespace>.<subject>`,
 *   so no transaction can publish into another namespace's subjects.
 * - The message id is `<uid>/<branch>` on both routes: a republish after a
 *   crash, a timeout or a failover is deduplicated by the broker (JetStream's
 *   Nats-Msg-Id window, the Redis dedup key) and, past those windows, by the
 *   consumer's barrier.
 * - One publish per (namespace, subject, key) at a time in this process: the
 *   next one of the same key waits for the previous one's answer, so the
 *   order the broker stores a key's messages in is the order they were
 *   published. The wait counts against the call's deadline; a lane is never
 *   shared across namespaces, so one tenant's slow key cannot hold another's.
 * - Failures: `unavailable` (both routes down, or NATS down on a manual nats
 *   route) is retried by the engine like any failed Deliver — the message
 *   stays committed and undelivered, visibly; `rejected` (no stream captures
 *   the subject, permission denied, too large) is retried too but starts its
 *   error with "BrokerRejected", which marks the transaction Stalled at once.
 */
import type { BrokerDelivery, BrokerDestination, DistributedTransaction } from '../api/types.js';
import type { Call } from '../engine/types.js';
import { BrokerError } from '../brokers/errors.js';
import { messageId, messageProblem, type BrokerMessage } from '../brokers/message.js';
import type { PublishAck } from '../brokers/router.js';
import { payloadBytes, type PayloadSecrets } from './payload-secret.js';
import { KeyLanes } from './key-lanes.js';

/** @default "kubetx" */
export const DEFAULT_SUBJECT_PREFIX = 'kubetx';

/** What publishes: the BrokerRouter (or anything with its publish). */
export interface BrokerPublisher {
  publish(msg: BrokerMessage): Promise<PublishAck>;
}

export interface BrokerDeliveryDeps {
  publisher: BrokerPublisher;
  /** --broker-subject-prefix. */
  subjectPrefix: string;
  lanes: KeyLanes;
}

/** The result of one publish, in the terms callParticipant reports. */
export type BrokerResult =
  | { kind: 'ok'; delivery: BrokerDelivery; message?: string }
  | { kind: 'retryable' | 'timeout'; message: string; code: string };

/** The NATS subject (and Redis stream set) a branch's messages go to. */
export function brokerSubject(prefix: string, namespace: string, subject: string): string {
  return `${prefix}.${namespace}.${subject}`;
}

/** The message key: the branch's, or the transaction's name. */
export function brokerKey(tx: DistributedTransaction, broker: BrokerDestination): string {
  return broker.key || tx.metadata.name;
}

/** The message a Deliver of `branchIndex` publishes; throws when it breaks the wire format. */
export function branchMessage(tx: DistributedTransaction, branchIndex: number, prefix: string, secrets: PayloadSecrets | undefined): BrokerMessage {
  const branch = tx.spec.branches[branchIndex]!;
  const broker = branch.broker!;
  const payload = payloadBytes(tx, branchIndex, secrets);
  const msg: BrokerMessage = {
    id: messageId(tx.metadata.uid, branch.name),
    key: brokerKey(tx, broker),
    subject: brokerSubject(prefix, tx.metadata.namespace, broker.subject),
    transaction: `${tx.metadata.namespace}/${tx.metadata.name}`,
    // The payload's JSON; a branch without one sends JSON null, as the SDK's consumer expects JSON.
    data: payload.length > 0 ? payload : Buffer.from('null'),
    ...(broker.stream ? { stream: broker.stream } : {}),
  };
  const problem = messageProblem(msg);
  if (problem) throw new BrokerError('rejected', 'nats', 'InvalidMessage', problem);
  return msg;
}

export function deliveryOf(ack: PublishAck): BrokerDelivery {
  const d: BrokerDelivery =
    ack.via === 'nats' ? { route: 'nats', stream: ack.stream, sequence: String(ack.seq) } : { route: 'redis', stream: ack.streamKey, sequence: ack.entryId };
  if (ack.duplicate) d.duplicate = true;
  return d;
}

/**
 * Publishes the branch's message, waiting for its key's lane until `deadline`
 * (ms since epoch). Never throws.
 */
export async function publishBranch(
  deps: BrokerDeliveryDeps,
  tx: DistributedTransaction,
  branchIndex: number,
  call: Call,
  deadline: number,
  signal: AbortSignal | undefined,
  secrets: PayloadSecrets | undefined,
): Promise<BrokerResult> {
  let msg: BrokerMessage;
  try {
    msg = branchMessage(tx, branchIndex, deps.subjectPrefix, secrets);
  } catch (err) {
    return failure(err);
  }
  const lane = `${tx.metadata.namespace}\u0000${msg.subject}\u0000${msg.key}`;
  const ran = await deps.lanes.run(lane, { deadline, signal }, async () => {
    try {
      const ack = await deps.publisher.publish(msg);
      return { kind: 'ok', delivery: deliveryOf(ack), ...(ack.duplicate ? { message: 'the broker had it already (deduplicated)' } : {}) } satisfies BrokerResult;
    } catch (err) {
      return failure(err);
    }
  });
  if (ran.ran) return ran.value;
  if (signal?.aborted) return { kind: 'retryable', message: 'publish cancelled before it was made', code: 'LOCAL_ERROR' };
  return { kind: 'timeout', message: `an earlier message with key "${msg.key.slice(0, 64)}" was still being published when the call's deadline passed (attempt ${call.attempt})`, code: 'DEADLINE_EXCEEDED' };
}

function failure(err: unknown): BrokerResult {
  if (err instanceof BrokerError) {
    return err.kind === 'rejected'
      ? { kind: 'retryable', message: `BrokerRejected: ${err.reason}: ${err.message}`.slice(0, 512), code: 'BROKER_REJECTED' }
      : { kind: 'retryable', message: `BrokerUnavailable: ${err.reason}: ${err.message}`.slice(0, 512), code: 'BROKER_UNAVAILABLE' };
  }
  return { kind: 'retryable', message: (err instanceof Error ? err.message : String(err)).slice(0, 512), code: 'LOCAL_ERROR' };
}

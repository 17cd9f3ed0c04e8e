/**
 * The wire format of a committed message, shared with the consumer side
 * (sdk/typescript implements the same): what kubetx writes to NATS JetStream
 * and, on failover, to the sharded Redis streams. Pure functions, no I/O.
 *
 * - id: `<transaction uid>/<branch name>`: the deduplication id on both paths
 *   (JetStream's `Nats-Msg-Id`, the Redis dedup key) and the consumer's barrier key.
 * - key: orders messages (per-key order) and picks the Redis shard.
 * - subject: a NATS subject without wildcards; on Redis it names the stream set.
 * - data: the payload's JSON, UTF-8, at most 64 KiB.
 *
 * NATS: publish to `subject` with headers Nats-Msg-Id, Kubetx-Key, Kubetx-Transaction.
 * Redis: XADD to `<prefix>:<subject>:<shard>`, shard = fnv1a64(key) mod shards,
 * fields id, key, transaction, data (the JSON as a string).
 */
import { fnv1a64 } from '../controller/sharding/hash-range.js';

export interface BrokerMessage {
  /** `<transaction uid>/<branch name>`. */
  readonly id: string;
  /** Per-key order and Redis shard. */
  readonly key: string;
  /** A NATS subject: dot-separated tokens of [A-Za-z0-9_-], no wildcards, ≤ 255 characters. */
  readonly subject: string;
  /** `<namespace>/<name>` of the DistributedTransaction. */
  readonly transaction: string;
  /** The payload's JSON, UTF-8 encoded, ≤ MAX_DATA_BYTES. */
  readonly data: Uint8Array;
  /** NATS only: the JetStream stream that must store it (JetStream's expected-stream check); the publisher's default when unset. */
  readonly stream?: string;
}

export const HEADER_MSG_ID = 'Nats-Msg-Id';
export const HEADER_KEY = 'Kubetx-Key';
export const HEADER_TRANSACTION = 'Kubetx-Transaction';

/** @default "kubetx" */
export const DEFAULT_REDIS_PREFIX = 'kubetx';
/** @default 128 */
export const DEFAULT_REDIS_SHARDS = 128;
/** JetStream's default duplicate window, used for the Redis dedup keys too. @default 120 */
export const DEFAULT_DEDUP_WINDOW_S = 120;
export const MAX_DATA_BYTES = 64 * 1024;
export const MAX_SUBJECT_LENGTH = 255;
/** A message key travels in a NATS header: no control characters, bounded. */
export const MAX_KEY_BYTES = 1024;

const TOKEN = /^[A-Za-z0-9_-]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `subject` is not a valid publish subject, or undefined when it is. */
export function subjectProblem(subject: string): string | undefined {
  if (subject.length === 0) return 'subject is empty';
  if (subject.length > MAX_SUBJECT_LENGTH) return `subject is ${subject.length} characters long, at most ${MAX_SUBJECT_LENGTH} allowed`;
  for (const token of subject.split('.')) {
    if (token === '') return `subject "${subject}" has an empty token (leading, trailing or doubled ".")`;
    if (token === '*' || token === '>') return `subject "${subject}" has the wildcard "${token}": a publish subject names one subject`;
    if (!TOKEN.test(token)) return `subject "${subject}": token "${token}" may hold only letters, digits, "_" and "-"`;
  }
  return undefined;
}

export function messageId(uid: string, branch: string): string {
  return `${uid}/${branch}`;
}

/** Why `msg` cannot be sent, or undefined when it can. */
export function messageProblem(msg: BrokerMessage): string | undefined {
  const slash = msg.id.indexOf('/');
  if (slash <= 0 || slash === msg.id.length - 1 || CONTROL.test(msg.id)) return `message id "${msg.id}" is not <transaction uid>/<branch name>`;
  if (msg.key === '' || CONTROL.test(msg.key)) return 'message key is empty or holds control characters';
  if (Buffer.byteLength(msg.key, 'utf8') > MAX_KEY_BYTES) return `message key is longer than ${MAX_KEY_BYTES} bytes`;
  const t = msg.transaction.split('/');
  if (t.length !== 2 || !t[0] || !t[1]) return `transaction "${msg.transaction}" is not <namespace>/<name>`;
  if (msg.data.byteLength > MAX_DATA_BYTES) return `data is ${msg.data.byteLength} bytes, at most ${MAX_DATA_BYTES} allowed`;
  return subjectProblem(msg.subject);
}

export interface MessageInput {
  uid: string;
  branch: string;
  key: string;
  subject: string;
  namespace: string;
  name: string;
  /** Serialised with JSON.stringify. */
  payload: unknown;
}

/** Builds a message from a transaction's branch; throws if it breaks the format. */
export function brokerMessage(input: MessageInput): BrokerMessage {
  const msg: BrokerMessage = {
    id: messageId(input.uid, input.branch),
    key: input.key,
    subject: input.subject,
    transaction: `${input.namespace}/${input.name}`,
    data: new TextEncoder().encode(JSON.stringify(input.payload ?? null)),
  };
  const problem = messageProblem(msg);
  if (problem) throw new Error(problem);
  return msg;
}

/** Which of `shards` Redis streams a message key goes to. */
export function redisShard(key: string, shards: number = DEFAULT_REDIS_SHARDS): number {
  return Number(fnv1a64(key) % BigInt(shards));
}

export function redisStreamKey(prefix: string, subject: string, shard: number): string {
  return `${prefix}:${subject}:${shard}`;
}

export function redisDedupKey(prefix: string, id: string): string {
  return `${prefix}:dedup:${id}`;
}

/** The XADD field/value list, in this order. */
export function redisFields(msg: BrokerMessage): string[] {
  return ['id', msg.id, 'key', msg.key, 'transaction', msg.transaction, 'data', Buffer.from(msg.data).toString('utf8')];
}

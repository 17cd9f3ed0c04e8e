/**
 * The failover path: one logical queue per subject spread over `shards` Redis
 * streams (`<prefix>:<subject>:<shard>`, shard = fnv1a64(key) mod shards), so
 * no single key grows hot or big and all messages of one key stay in one
 * stream, in publish order.
 *
 * A publish is one Lua script, atomic on the server:
 *   1. if `<prefix>:dedup:<id>` exists, answer its entry id, `duplicate: true`;
 *   2. if the queues are closed (`<prefix>:closed`, see below), refuse;
 *   3. `SET <prefix>:dedup:<id> NX EX <window>`, XADD, store the entry id in the
 *      dedup key, add the subject to `<prefix>:subjects` (what `pendingTotal`
 *      iterates). An XADD error deletes the dedup key again: nothing half-written.
 *
 * Closing (`close`/`reopen`/`open`) is the fence the router's switch-back
 * needs: once `<prefix>:closed` is set no replica can add an entry, so a
 * `drained()` that answers true after it stays true, and no message of a key
 * can reach Redis after a later one went to NATS.
 *
 * Deployment note: the script touches four keys, so on Redis Cluster they
 * would need one hash slot; this targets one Redis (or Sentinel) endpoint.
 */
import { ReplyError, type Redis } from 'ioredis';
import { BrokerError, withTimeout } from './errors.js';
import {
  DEFAULT_DEDUP_WINDOW_S,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_REDIS_SHARDS,
  messageProblem,
  redisDedupKey,
  redisFields,
  redisShard,
  redisStreamKey,
  type BrokerMessage,
} from './message.js';

export interface RedisAck {
  via: 'redis';
  streamKey: string;
  entryId: string;
  duplicate: boolean;
}

export interface RedisQueuesOptions {
  /** An ioredis client; give it `enableOfflineQueue: false` and `maxRetriesPerRequest: 0` so commands fail fast while Redis is down. */
  redis: Redis;
  /** @default "kubetx" */
  prefix?: string;
  /** @default 128 */
  shards?: number;
  /** How long a message id stays deduplicated. @default 120 */
  dedupWindowS?: number;
  /** Bound on every command or pipeline. @default 2000 */
  timeoutMs?: number;
  /** Subjects `pendingTotal` always checks, besides those recorded in `<prefix>:subjects`. */
  subjects?: string[];
}

/** The reason of the error a publish gets while the queues are closed for a switch-back. */
export const QUEUES_CLOSED = 'QueuesClosed';

/** Reply codes (the reply's first word) that mean "Redis cannot take writes now", not "this write is wrong". */
const UNAVAILABLE_CODES = new Set(['OOM', 'LOADING', 'BUSY', 'MASTERDOWN', 'READONLY', 'CLUSTERDOWN', 'TRYAGAIN', 'NOREPLICAS', 'MISCONF']);

const PUBLISH = `
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  return {'', 2}
end
if not redis.call('SET', KEYS[1], '', 'NX', 'EX', ARGV[1]) then
  return {redis.call('GET', KEYS[1]), 1}
end
local entry = redis.pcall('XADD', KEYS[2], '*', 'id', ARGV[2], 'key', ARGV[3], 'transaction', ARGV[4], 'data', ARGV[5])
if type(entry) == 'table' and entry.err then
  redis.call('DEL', KEYS[1])
  return entry
end
redis.call('SET', KEYS[1], entry, 'XX', 'KEEPTTL')
redis.call('SADD', KEYS[4], ARGV[6])
return {entry, 0}
`;

const REOPEN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type PublishScript = (dedup: string, stream: string, closed: string, subjects: string, ...argv: string[]) => Promise<[string, number]>;
type ReopenScript = (closed: string, token: string) => Promise<number>;
/** The client once defineCommand has added the scripts. */
type WithScripts = Redis & { kubetxPublish?: PublishScript; kubetxReopen?: ReopenScript };

export class RedisQueues {
  readonly prefix: string;
  readonly shards: number;
  private readonly redis: WithScripts;
  private readonly windowS: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: RedisQueuesOptions) {
    this.redis = opts.redis;
    this.prefix = opts.prefix ?? DEFAULT_REDIS_PREFIX;
    this.shards = opts.shards ?? DEFAULT_REDIS_SHARDS;
    this.windowS = opts.dedupWindowS ?? DEFAULT_DEDUP_WINDOW_S;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    if (!Number.isInteger(this.shards) || this.shards < 1) throw new Error(`shards must be a positive integer, not ${this.shards}`);
    if (!this.redis.kubetxPublish) {
      this.redis.defineCommand('kubetxPublish', { numberOfKeys: 4, lua: PUBLISH });
      this.redis.defineCommand('kubetxReopen', { numberOfKeys: 1, lua: REOPEN });
    }
  }

  streamKey(subject: string, key: string): string {
    return redisStreamKey(this.prefix, subject, redisShard(key, this.shards));
  }

  /** Every shard's stream key of `subject`, shard 0 first. */
  streamKeys(subject: string): string[] {
    return Array.from({ length: this.shards }, (_, i) => redisStreamKey(this.prefix, subject, i));
  }

  get closedKey(): string {
    return `${this.prefix}:closed`;
  }

  get subjectsKey(): string {
    return `${this.prefix}:subjects`;
  }

  async publish(msg: BrokerMessage): Promise<RedisAck> {
    const problem = messageProblem(msg);
    if (problem) throw new BrokerError('rejected', 'redis', 'InvalidMessage', problem);
    const streamKey = this.streamKey(msg.subject, msg.key);
    const fields = redisFields(msg);
    const argv = [String(this.windowS), fields[1]!, fields[3]!, fields[5]!, fields[7]!, msg.subject];
    const [entryId, flag] = await this.run(() =>
      this.redis.kubetxPublish!(redisDedupKey(this.prefix, msg.id), streamKey, this.closedKey, this.subjectsKey, ...argv),
    );
    if (flag === 2) throw new BrokerError('unavailable', 'redis', QUEUES_CLOSED, 'the Redis queues are closed: the route is switching back to NATS');
    return { via: 'redis', streamKey, entryId, duplicate: flag === 1 };
  }

  /**
   * Entries not yet consumed and acked: for every stream key of every known
   * subject that exists, per consumer group in `groups` (default: every group
   * the key has) its lag (entries not yet delivered) plus its pending count
   * (delivered, not acked). A key with entries but without such a group counts
   * all its entries. Keys that do not exist count 0. One pipeline for all keys.
   */
  async pendingTotal(groups?: readonly string[]): Promise<number> {
    const subjects = new Set([...(this.opts.subjects ?? []), ...(await this.run(() => this.redis.smembers(this.subjectsKey)))]);
    const keys = [...subjects].flatMap((s) => this.streamKeys(s));
    if (keys.length === 0) return 0;
    const pipe = this.redis.pipeline();
    for (const k of keys) pipe.exists(k).xlen(k).xinfo('GROUPS', k);
    const replies = (await this.run(() => pipe.exec())) ?? [];
    let total = 0;
    const unknownLag: Array<{ key: string; lastDelivered: string; pending: number }> = [];
    keys.forEach((key, i) => {
      const [existsErr, exists] = replies[3 * i] ?? [];
      if (existsErr) throw classifyRedis(existsErr);
      if (exists !== 1) return; // no such key: nothing waits there
      const [, len] = replies[3 * i + 1] ?? [];
      const [infoErr, info] = replies[3 * i + 2] ?? [];
      if (infoErr) throw classifyRedis(infoErr);
      const present = new Map((info as unknown[][]).map((g) => {
        const o = pairs(g);
        return [String(o.name), o] as const;
      }));
      const wanted = groups ?? [...present.keys()];
      if (wanted.length === 0) total += Number(len);
      for (const name of wanted) {
        const g = present.get(name);
        if (!g) {
          total += Number(len);
          continue;
        }
        const pending = Number(g.pending ?? 0);
        if (g.lag === null || g.lag === undefined) unknownLag.push({ key, lastDelivered: String(g['last-delivered-id']), pending });
        else total += Number(g.lag) + pending;
      }
    });
    if (unknownLag.length > 0) {
      // Lag is unknown after deletions in the stream: compare the group's position with the stream's last id.
      const p2 = this.redis.pipeline();
      for (const u of unknownLag) p2.xinfo('STREAM', u.key);
      const infos = (await this.run(() => p2.exec())) ?? [];
      unknownLag.forEach((u, i) => {
        const [err, info] = infos[i] ?? [];
        if (err) throw classifyRedis(err);
        const last = String(pairs(info as unknown[])['last-generated-id']);
        total += u.pending + (last === u.lastDelivered ? 0 : 1);
      });
    }
    return total;
  }

  /** True when every consumer group has consumed and acked every entry on every shard. */
  async drained(groups?: readonly string[]): Promise<boolean> {
    return (await this.pendingTotal(groups)) === 0;
  }

  /** Closes the queues for new entries unless someone else holds them closed; expires after `ttlMs`. */
  async close(token: string, ttlMs: number): Promise<boolean> {
    return (await this.run(() => this.redis.set(this.closedKey, token, 'PX', ttlMs, 'NX'))) === 'OK';
  }

  /** Reopens the queues if `token` closed them. */
  async reopen(token: string): Promise<void> {
    await this.run(() => this.redis.kubetxReopen!(this.closedKey, token));
  }

  /** Opens the queues whoever closed them (a failover to Redis overrides a switch-back in progress). */
  async open(): Promise<void> {
    await this.run(() => this.redis.del(this.closedKey));
  }

  async ping(): Promise<void> {
    await this.run(() => this.redis.ping());
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(fn(), this.timeoutMs, () => new BrokerError('unavailable', 'redis', 'Timeout', `no answer from Redis within ${this.timeoutMs} ms`));
    } catch (err) {
      throw classifyRedis(err);
    }
  }
}

/** A reply error's code is its first word (OOM, WRONGTYPE, ERR…); anything else is the connection failing. */
export function classifyRedis(err: unknown): BrokerError {
  if (err instanceof BrokerError) return err;
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof ReplyError) {
    const code = text.split(' ', 1)[0] ?? '';
    return UNAVAILABLE_CODES.has(code)
      ? new BrokerError('unavailable', 'redis', 'RedisBusy', text, { cause: err })
      : new BrokerError('rejected', 'redis', 'RedisRejected', text, { cause: err });
  }
  return new BrokerError('unavailable', 'redis', 'RedisDown', text, { cause: err });
}

function pairs(flat: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) o[String(flat[i])] = flat[i + 1];
  return o;
}

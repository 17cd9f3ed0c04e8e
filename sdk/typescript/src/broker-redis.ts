/**
 * The Redis path of `subscribe`: one consumer group over every shard stream
 * `<prefix>:<subject>:<shard>` (shard 0 … shards−1; the publisher picks the
 * shard by FNV-1a-64 of the message key, so a key's messages are in one
 * stream, in order). Entry fields: `id`, `key`, `transaction`, `data` (UTF-8
 * JSON).
 *
 *  - Setup: XGROUP CREATE <key> <group> 0 MKSTREAM on every shard (BUSYGROUP =
 *    already there), so entries written before the consumer first started are
 *    read too.
 *  - Start: this consumer's own pending entries (a restart under the same
 *    name) are read first, XREADGROUP … STREAMS <keys> 0 …, until none is left.
 *  - Then XREADGROUP … COUNT <batch> BLOCK <blockMs> STREAMS <all keys> > …:
 *    one call over all the shards, only while the dispatcher has room.
 *  - Meanwhile, every claimIdleMs/2, XAUTOCLAIM takes over entries pending
 *    longer than `claimIdleMs` (a failed handler's, or a dead consumer's) and
 *    hands them over again; entries this process is still working on are
 *    skipped.
 *  - XACK after the local commit. Blocking reads use their own connection
 *    (`client.duplicate()`), so acks and claims never wait behind them.
 */
import type { Redis } from 'ioredis';
import { backoff, onAbort, pause, type Delivery, type Sink, type Source } from './broker-internal.js';

export interface RedisSubscribeOptions {
  /** e.g. "redis://redis.messaging:6379". Give this or `client`. */
  url?: string;
  /** An ioredis client of your own; `stop()` leaves it open (its duplicate for blocking reads is closed). */
  client?: Redis;
  /** The subject in the stream keys (no wildcards). @default nats.subject */
  subject?: string;
  /** @default "kubetx" */
  prefix?: string;
  /** Number of shard streams; must match the publisher's. @default 128 */
  shards?: number;
  /** The consumer group: one per consuming service. */
  group: string;
  /** This consumer's name in the group; keep it stable across restarts (e.g. the pod name). */
  consumer: string;
  /** How long one XREADGROUP waits for entries. @default 1000 */
  blockMs?: number;
  /** COUNT per shard of one XREADGROUP / XAUTOCLAIM. @default 16 */
  batch?: number;
  /** An entry pending this long is claimed and handed over again. @default 30000 */
  claimIdleMs?: number;
}

type Entry = [id: string, fields: string[] | null];
type ReadReply = Array<[key: string, entries: Entry[]]> | null;
type ClaimReply = [next: string, entries: Entry[], deleted?: string[]];

export function redisSource(options: RedisSubscribeOptions, natsSubject: string | undefined, sink: Sink, stopping: AbortSignal): Source {
  const subject = options.subject ?? natsSubject;
  if (!subject) throw new TypeError('subscribe: give redis.subject (or nats.subject)');
  if (/[*>\s]/.test(subject)) throw new TypeError(`subscribe: redis subject ${JSON.stringify(subject)} must be one subject, without wildcards`);
  const { group, consumer } = options;
  if (!group || !consumer) throw new TypeError('subscribe: redis.group and redis.consumer are required');
  if (!options.client && !options.url) throw new TypeError('subscribe: give redis.url or redis.client');
  const prefix = options.prefix ?? 'kubetx';
  const shards = options.shards ?? 128;
  const blockMs = options.blockMs ?? 1_000;
  const batch = options.batch ?? 16;
  const claimIdleMs = options.claimIdleMs ?? 30_000;
  for (const [name, v] of [['shards', shards], ['blockMs', blockMs], ['batch', batch], ['claimIdleMs', claimIdleMs]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`subscribe: redis.${name} must be a positive integer`);
  }
  const keys = Array.from({ length: shards }, (_, i) => `${prefix}:${subject}:${i}`);
  const log = sink.logger.child({ path: 'redis', group, consumer, streams: `${prefix}:${subject}:{0..${shards - 1}}` });
  /** `<stream key> <entry id>` of every entry handed over and not finished. */
  const working = new Set<string>();
  let client: Redis | undefined;
  let reader: Redis | undefined;
  let own: Redis | undefined;

  const hand = (key: string, id: string, fields: string[], redelivered: boolean) => {
    const tag = `${key} ${id}`;
    if (working.has(tag)) return;
    working.add(tag);
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
    const done = async () => {
      try {
        await client!.xack(key, group, id);
      } finally {
        working.delete(tag);
      }
    };
    const d: Delivery = {
      path: 'redis',
      id: f.get('id'),
      key: f.get('key'),
      transaction: f.get('transaction'),
      subject,
      data: Buffer.from(f.get('data') ?? '', 'utf8'),
      redelivered,
      ack: done,
      retry: () => working.delete(tag),
      reject: done,
    };
    sink.dispatch(d);
  };

  /** Hands over what a read or claim returned; entries deleted from the stream (no fields) are acked away. */
  const handAll = async (key: string, entries: Entry[], redelivered: boolean) => {
    for (const [id, fields] of entries) {
      if (fields) hand(key, id, fields, redelivered);
      else await client!.xack(key, group, id);
    }
  };

  const setup = async () => {
    const retry = backoff();
    while (!stopping.aborted) {
      try {
        const p = client!.pipeline();
        for (const key of keys) p.xgroup('CREATE', key, group, '0', 'MKSTREAM');
        for (const [err] of (await p.exec()) ?? []) {
          if (err && !err.message.startsWith('BUSYGROUP')) throw err;
        }
        sink.ready('redis');
        return true;
      } catch (err) {
        log.warn({ err }, 'creating the consumer groups failed; retrying');
        await pause(retry.next(), stopping);
      }
    }
    return false;
  };

  const readLoop = async () => {
    const retry = backoff();
    // This consumer's own pending entries first (it restarted under the same name), then new ones.
    const cursors = keys.map(() => '0');
    let history = true;
    const index = new Map(keys.map((k, i) => [k, i]));
    while (!stopping.aborted) {
      await sink.waitForRoom('redis', stopping);
      if (stopping.aborted) break;
      try {
        const args: Array<string | number> = ['GROUP', group, consumer, 'COUNT', batch];
        if (!history) args.push('BLOCK', blockMs);
        args.push('STREAMS', ...keys, ...(history ? cursors : keys.map(() => '>')));
        const reply = (await reader!.call('XREADGROUP', ...args)) as ReadReply;
        let got = 0;
        for (const [key, entries] of reply ?? []) {
          got += entries.length;
          const last = entries[entries.length - 1];
          if (history && last) cursors[index.get(key)!] = last[0];
          await handAll(key, entries, history);
        }
        if (history && got === 0) history = false;
        retry.reset();
      } catch (err) {
        if (stopping.aborted) break;
        log.warn({ err }, 'XREADGROUP failed; retrying');
        await pause(retry.next(), stopping);
        // The groups are gone (a Redis that lost its data): create them again.
        if ((err as Error).message?.startsWith('NOGROUP') && !(await setup())) break;
      }
    }
  };

  const claimLoop = async () => {
    const retry = backoff();
    while (!stopping.aborted) {
      await pause(Math.max(100, Math.floor(claimIdleMs / 2)), stopping);
      if (stopping.aborted) break;
      try {
        let cursors = keys.map((key) => ({ key, start: '0-0' }));
        while (cursors.length > 0 && !stopping.aborted && sink.room('redis') > 0) {
          const p = client!.pipeline();
          for (const c of cursors) p.xautoclaim(c.key, group, consumer, claimIdleMs, c.start, 'COUNT', batch);
          const replies = (await p.exec()) ?? [];
          const more: typeof cursors = [];
          for (let i = 0; i < replies.length; i++) {
            const [err, reply] = replies[i]!;
            if (err) throw err;
            const [next, entries] = reply as ClaimReply;
            if (entries.length > 0) log.info({ stream: cursors[i]!.key, entries: entries.length }, 'claimed pending entries');
            await handAll(cursors[i]!.key, entries, true);
            if (next !== '0-0') more.push({ key: cursors[i]!.key, start: next });
          }
          cursors = more;
        }
        retry.reset();
      } catch (err) {
        if (stopping.aborted) break;
        log.warn({ err }, 'XAUTOCLAIM failed; retrying');
        await pause(retry.next(), stopping);
      }
    }
  };

  const run = async () => {
    const { Redis } = await import('ioredis');
    client = options.client ?? (own = new Redis(options.url!, { maxRetriesPerRequest: 1 }));
    reader = client.duplicate({ maxRetriesPerRequest: 1 });
    // ioredis reconnects by itself; without a listener it prints every connection error.
    for (const c of [own, reader]) c?.on('error', (err: Error) => log.debug({ err }, 'Redis connection error'));
    // A read stuck on a dead connection must not hold stop() up: drop the connection once a BLOCK has had its time.
    onAbort(stopping, () => setTimeout(() => reader?.disconnect(), blockMs + 2_000).unref());
    if (!(await setup())) return;
    await Promise.all([readLoop(), claimLoop()]);
  };

  const finished = run().catch((err: unknown) => log.error({ err }, 'the Redis path stopped on an unexpected error'));
  return {
    finished,
    async close() {
      reader?.disconnect();
      if (own) await own.quit().catch(() => own!.disconnect());
    },
  };
}

/**
 * `@kubetx/participant/broker`: the consumer side of kubetx's broker delivery.
 * One `subscribe` reads both paths a Message/Notify branch with a broker
 * destination can take, at the same time:
 *
 *   - NATS JetStream (the primary): a durable pull consumer on the stream;
 *   - the sharded Redis fallback (used while the broker is unhealthy): one
 *     consumer group over every shard stream `<prefix>:<subject>:<shard>`.
 *
 * Each message runs `handler(message, tx)` inside the barrier's local
 * transaction under the barrier key of a gRPC Deliver for the same branch
 * (uid, branch, 'Deliver'; the message id is `<uid>/<branch>`). The ack
 * (JetStream ack, Redis XACK) is sent only after that transaction committed.
 * So:
 *
 *   - at-least-once on each path: a message is acked after its effect
 *     committed, never before; a crash in between brings it back;
 *   - applied once: a message whose id the barrier already holds (a
 *     redelivery, the same message on the other path after a failover, or a
 *     gRPC Deliver of the same branch) is acked without running the handler;
 *   - per-key order: two messages with the same key never run at once (a lane
 *     per key, shared by both paths), and each path hands them over in the
 *     order it stores them. With one consumer per group/durable that keeps the
 *     key's order within each path, unless a handler error or a crash sends a
 *     message back for redelivery while later ones of its key go ahead.
 *
 * A handler error acks nothing: JetStream gets a NAK with a delay and
 * redelivers; a Redis entry stays pending and is claimed again (XAUTOCLAIM)
 * once it has been idle for `redis.claimIdleMs`. A message that can never
 * succeed (a malformed envelope, or the handler throws `InvalidPayload`, as
 * reading `payload` does for data that is not JSON) is logged and dropped:
 * JetStream TERM, Redis XACK.
 *
 * The clients (@nats-io/transport-node and @nats-io/jetstream 3, ioredis 5)
 * are optional peer dependencies, loaded only for the path you configure.
 * Wire format: docs/sdk.md, "Consuming broker messages".
 */
import type { Barrier, BarrierOutcome, BarrierResponse } from './barrier.js';
import { InvalidPayload } from './errors.js';
import { jsonLogger, type Logger } from './log.js';
import { natsSource, type NatsSubscribeOptions } from './broker-nats.js';
import { redisSource, type RedisSubscribeOptions } from './broker-redis.js';
import type { BrokerPath, Delivery, Sink, Source } from './broker-internal.js';

export type { NatsSubscribeOptions } from './broker-nats.js';
export type { RedisSubscribeOptions } from './broker-redis.js';
export type { BrokerPath } from './broker-internal.js';

/** One message as the handler sees it. */
export interface BrokerMessage {
  /** `<transaction uid>/<branch>`: the deduplication id on both paths. */
  readonly id: string;
  /** metadata.uid of the DistributedTransaction (the barrier key's uid). */
  readonly uid: string;
  readonly branch: string;
  /** The message key (per-key order, Redis shard). */
  readonly key: string;
  /** The transaction's namespace and name (`Kubetx-Transaction` / `transaction`). */
  readonly namespace: string;
  readonly name: string;
  readonly subject: string;
  readonly path: BrokerPath;
  /** The payload parsed as JSON on first read; throws `InvalidPayload` if it is not JSON. */
  readonly payload: unknown;
  /** The payload's bytes (UTF-8 JSON). */
  readonly data: Buffer;
  /** True when the path has handed this message over before (JetStream redelivery, Redis claim or pending read). */
  readonly redelivered: boolean;
}

/** Runs inside the barrier's transaction; write through `tx`. With SqliteBarrier it must be synchronous. */
export type BrokerHandler<Tx> = (message: BrokerMessage, tx: Tx) => void | Promise<void>;

export interface PathCounters {
  /** Messages handed over by the path (redeliveries included). */
  received: number;
  /** The handler ran and its transaction committed. */
  applied: number;
  /** The barrier already held the id: not applied again. */
  duplicates: number;
  /** Acks the broker confirmed (JetStream ack, XACK). */
  acked: number;
  /** The handler (or the barrier, or the ack) failed: left for redelivery. */
  failed: number;
  /** Could never succeed (malformed, InvalidPayload): dropped (TERM / XACK). */
  rejected: number;
}

export type SubscriptionCounters = Record<BrokerPath, PathCounters>;

export interface SubscribeOptions<Tx> {
  /** The JetStream path. At least one of `nats` and `redis`. */
  nats?: NatsSubscribeOptions;
  /** The sharded Redis fallback. */
  redis?: RedisSubscribeOptions;
  /** The participant's barrier (SqliteBarrier, PgBarrier): deduplicates by message id. */
  barrier: Barrier<Tx>;
  handler: BrokerHandler<Tx>;
  /** Messages processed at once, over both paths (never two of one key). @default 16 */
  concurrency?: number;
  /**
   * Messages received and not yet finished, per path: no fetch or read is
   * made while it is reached (one Redis read may bring up to shards × batch). @default 256
   */
  prefetch?: number;
  /** Aborting it is `stop()`. */
  signal?: AbortSignal;
  /**
   * Called after the message's local transaction committed (or the barrier
   * found it applied) and before its ack. For metrics; a test uses it to
   * crash between the commit and the ack. If it throws, the message is not
   * acked (it comes again, and the barrier answers it).
   */
  afterCommit?: (message: BrokerMessage, outcome: Exclude<BarrierOutcome, 'null-compensation'>) => void | Promise<void>;
  /** @default JSON lines to stdout at LOG_LEVEL or "info" */
  logger?: Logger;
}

export interface Subscription {
  /** Resolves once every configured path has its consumer (JetStream durable, Redis groups) in place. */
  readonly ready: Promise<void>;
  /** A snapshot of the counters, per path. */
  readonly counters: SubscriptionCounters;
  /** Stops fetching, waits for the messages in flight to finish (handler, commit, ack), closes the connections it opened. Idempotent. */
  stop(): Promise<void>;
}

const zero = (): PathCounters => ({ received: 0, applied: 0, duplicates: 0, acked: 0, failed: 0, rejected: 0 });

/** Starts consuming; see the module comment for what is guaranteed. */
export function subscribe<Tx>(options: SubscribeOptions<Tx>): Subscription {
  if (!options.nats && !options.redis) throw new TypeError('subscribe: give nats, redis or both');
  const concurrency = positive(options.concurrency ?? 16, 'concurrency');
  const prefetch = positive(options.prefetch ?? 256, 'prefetch');
  const logger = (options.logger ?? jsonLogger()).child({ component: 'kubetx-subscribe' });
  const dispatcher = new Dispatcher(options, logger, concurrency, prefetch);
  const stopping = new AbortController();

  const paths: BrokerPath[] = [];
  const sources: Source[] = [];
  try {
    if (options.nats) {
      paths.push('nats');
      sources.push(natsSource(options.nats, dispatcher, stopping.signal));
    }
    if (options.redis) {
      paths.push('redis');
      sources.push(redisSource(options.redis, options.nats?.subject, dispatcher, stopping.signal));
    }
  } catch (err) {
    // Invalid options for the second path: the first one is already starting.
    stopping.abort(err);
    for (const s of sources) void s.finished.then(() => s.close()).catch(() => undefined);
    throw err;
  }
  const ready = dispatcher.readyFor(paths, stopping.signal);
  ready.catch(() => undefined); // a stop before ready rejects it; unobserved, that is no error

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping.abort(new Error('subscription stopped'));
      await Promise.all(sources.map((s) => s.finished));
      await dispatcher.idle();
      await Promise.all(sources.map((s) => s.close().catch((err: unknown) => logger.warn({ err }, 'closing a broker connection failed'))));
      logger.info({ counters: dispatcher.snapshot() }, 'subscription stopped');
    })());
  if (options.signal) {
    if (options.signal.aborted) void stop();
    else options.signal.addEventListener('abort', () => void stop(), { once: true });
  }

  return {
    ready,
    get counters() {
      return dispatcher.snapshot();
    },
    stop,
  };
}

/**
 * Per-key lanes over a bounded number of concurrent messages. A lane exists
 * while its key has messages queued or running; it runs them one at a time in
 * the order they were dispatched, whichever path they came by.
 */
class Dispatcher<Tx> implements Sink {
  private readonly lanes = new Map<string, Delivery[]>();
  private readonly inFlight: Record<BrokerPath, number> = { nats: 0, redis: 0 };
  private readonly counters: SubscriptionCounters = { nats: zero(), redis: zero() };
  private readonly roomWaiters = new Set<() => void>();
  private readonly slotWaiters: Array<() => void> = [];
  private readonly idleWaiters = new Set<() => void>();
  private readonly readyPaths = new Set<BrokerPath>();
  private readonly readyWaiters = new Set<() => void>();
  private running = 0;

  constructor(
    private readonly options: SubscribeOptions<Tx>,
    readonly logger: Logger,
    private readonly concurrency: number,
    private readonly prefetch: number,
  ) {}

  snapshot(): SubscriptionCounters {
    return { nats: { ...this.counters.nats }, redis: { ...this.counters.redis } };
  }

  room(path: BrokerPath): number {
    return Math.max(0, this.prefetch - this.inFlight[path]);
  }

  waitForRoom(path: BrokerPath, signal: AbortSignal): Promise<void> {
    return waitUntil(() => this.room(path) > 0 || signal.aborted, this.roomWaiters, signal);
  }

  ready(path: BrokerPath): void {
    this.readyPaths.add(path);
    for (const w of [...this.readyWaiters]) w();
  }

  readyFor(paths: BrokerPath[], signal: AbortSignal): Promise<void> {
    return waitUntil(() => paths.every((p) => this.readyPaths.has(p)) || signal.aborted, this.readyWaiters, signal).then(() => {
      if (!paths.every((p) => this.readyPaths.has(p))) throw new Error('subscription stopped before it was ready');
    });
  }

  idle(): Promise<void> {
    return waitUntil(() => this.inFlight.nats + this.inFlight.redis === 0, this.idleWaiters);
  }

  dispatch(d: Delivery): void {
    this.inFlight[d.path]++;
    this.counters[d.path].received++;
    // Without a key there is no order to keep: the id is a lane of its own.
    const lane = d.key ? `k:${d.key}` : `i:${d.id ?? ''}`;
    const queue = this.lanes.get(lane);
    if (queue) {
      queue.push(d);
      return;
    }
    this.lanes.set(lane, [d]);
    void this.drain(lane);
  }

  private async drain(lane: string): Promise<void> {
    const queue = this.lanes.get(lane)!;
    while (queue.length > 0) {
      const d = queue[0]!;
      await this.acquire();
      let acking: Promise<void> | undefined;
      try {
        acking = (await this.process(d))?.acking;
      } catch (err) {
        this.logger.error({ err, id: d.id, path: d.path }, 'unexpected error finishing a message');
      } finally {
        this.release();
        queue.shift();
        // The key's next message need not wait for this one's ack (a confirmed JetStream ack can
        // take the whole request timeout when NATS goes away): its effect is committed already.
        // Until the ack is sent it still counts against prefetch, and stop() waits for it.
        const finished = () => {
          this.inFlight[d.path]--;
          wake(this.roomWaiters);
          wake(this.idleWaiters);
        };
        if (acking) void acking.finally(finished);
        else finished();
      }
    }
    this.lanes.delete(lane);
  }

  /** Runs the message in the barrier; once committed, returns its ack under way (undefined when there is none to wait for). */
  private async process(d: Delivery): Promise<{ acking: Promise<void> } | undefined> {
    const c = this.counters[d.path];
    const log = this.logger.child({ path: d.path, id: d.id, key: d.key });
    const message = toMessage(d);
    if (typeof message === 'string') {
      log.error({ reason: message }, 'malformed broker message: dropped');
      await d.reject(message);
      c.rejected++;
      return;
    }
    let outcome: Exclude<BarrierOutcome, 'null-compensation'>;
    try {
      const response: BarrierResponse = { message: `via ${d.path}`, data: Buffer.alloc(0) };
      const r = await this.options.barrier.run({ uid: message.uid, branch: message.branch }, 'Deliver', (tx) => {
        const out = this.options.handler(message, tx);
        return isPromiseLike(out) ? Promise.resolve(out).then(() => response) : response;
      });
      outcome = r.outcome === 'executed' ? 'executed' : 'duplicate';
    } catch (err) {
      if (err instanceof InvalidPayload) {
        log.error({ reason: err.message }, 'message can never be applied (InvalidPayload): dropped');
        await d.reject(err.message);
        c.rejected++;
        return;
      }
      c.failed++;
      log.warn({ err, redelivered: d.redelivered }, 'handler failed: not acked, the message comes again');
      d.retry();
      return;
    }
    if (outcome === 'executed') c.applied++;
    else c.duplicates++;
    const acking = (async () => {
      try {
        await this.options.afterCommit?.(message, outcome);
        await d.ack();
      } catch (err) {
        c.failed++;
        log.warn({ err, outcome }, 'committed but not acked: the message comes again and the barrier answers it');
        d.retry();
        return;
      }
      c.acked++;
      log.debug({ outcome }, 'message done');
    })();
    // In an object: an async function would wait for a promise it returns.
    return { acking };
  }

  private acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    if (next) next(); // the slot passes on
    else this.running--;
  }
}

/** The handler's view of a delivery, or why it is malformed. */
function toMessage(d: Delivery): BrokerMessage | string {
  const id = d.id ?? '';
  const slash = id.indexOf('/');
  if (slash <= 0 || slash === id.length - 1) return `message id ${JSON.stringify(id)} is not "<transaction uid>/<branch>"`;
  const tx = d.transaction ?? '';
  const txSlash = tx.indexOf('/');
  let parsed: { value: unknown } | undefined;
  const data = d.data;
  return {
    id,
    uid: id.slice(0, slash),
    branch: id.slice(slash + 1),
    key: d.key ?? '',
    namespace: txSlash < 0 ? '' : tx.slice(0, txSlash),
    name: txSlash < 0 ? tx : tx.slice(txSlash + 1),
    subject: d.subject,
    path: d.path,
    data,
    redelivered: d.redelivered,
    get payload() {
      if (!parsed) {
        if (data.length === 0) parsed = { value: undefined };
        else {
          try {
            parsed = { value: JSON.parse(data.toString('utf8')) as unknown };
          } catch (err) {
            throw new InvalidPayload(`message ${id}: payload is not JSON: ${(err as Error).message}`);
          }
        }
      }
      return parsed.value;
    },
  };
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`subscribe: ${what} must be a positive integer`);
  return n;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function wake(waiters: Set<() => void>): void {
  for (const w of [...waiters]) w();
}

/** Resolves once `cond()` holds, re-checked whenever a waiter in `waiters` is woken (or `signal` aborts). */
function waitUntil(cond: () => boolean, waiters: Set<() => void>, signal?: AbortSignal): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!cond()) return;
      waiters.delete(check);
      signal?.removeEventListener('abort', check);
      resolve();
    };
    waiters.add(check);
    signal?.addEventListener('abort', check);
  });
}

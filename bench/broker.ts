/**
 * Broker delivery (issue 21 item 6): messages/s through NATS JetStream and
 * through the sharded Redis fallback, and the failover gap when NATS dies.
 *
 * Real components: nats-server (JetStream, file store) and redis-server
 * started by test/support, the route switch as a ConfigMap on the run's
 * control plane (client-node with the operator's keep-alive agent), the
 * publishing side as the operator wires it (BrokerRouter over NatsPublisher,
 * RedisQueues with 128 shards, RouteSwitch), and the consumer as a user would
 * write it: the TypeScript SDK's `subscribe` on both paths with a SqliteBarrier,
 * in a process of its own (bench/lib/broker-consumer.ts), whose handler writes
 * a ledger row inside the barrier's transaction.
 *
 * 1. Throughput. For each K: K publishers, each sending to 4 keys of its own in
 *    turn and awaiting each publish (one message per key in flight, as the
 *    operator's key lanes do), N messages per row; first with the route on nats,
 *    then flipped to redis by hand (RouteSwitch.flip, manual), alternating per
 *    K. Per row: publish rate (first publish → last ack), delivery rate (first
 *    publish → last ledger row), publish latency and publish → applied latency
 *    p50/p99; every id must be in the ledger exactly once.
 * 2. Failover. A steady stream (8 publishers, RATE msgs/s in all, each retrying
 *    a failed publish after 10 ms); after BEFORE_KILL_MS, at a moment a
 *    publish awaits its ack, nats-server is SIGKILLed; the router fails over;
 *    after ON_REDIS_MS on Redis NATS is restarted; the router switches back on
 *    its own (recoverAfterMs 1 s); AFTER_BACK_MS more on NATS, then the stream
 *    stops and both paths are drained. Once per router variant: its defaults, a failure threshold of 1,
 *    and a threshold of 1 with a 500 ms NATS publish timeout. The ledger must
 *    hold every published id exactly once; duplicate acks (the broker's
 *    dedup answered) and barrier skips (the consumer saw an id again, e.g. a
 *    NATS copy whose ack was lost to the kill and that went to Redis too) are
 *    counted, and per-key order as the consumer applied it is checked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import type { SubscriptionCounters } from '../sdk/typescript/src/broker.js';
import {
  BrokerError,
  BrokerRouter,
  brokerMessage,
  DEFAULT_REDIS_SHARDS,
  NatsPublisher,
  RedisQueues,
  RouteSwitch,
  type BrokerMessage,
  type BrokerRouterOptions,
  type PublishAck,
  type Route,
} from '../src/brokers/index.js';
import { reuseConnections } from '../src/controller/kube-agent.js';
import { sleep } from '../src/controller/timers.js';
import { startNats, type NatsServer } from '../test/support/nats.js';
import { startRedis, type RedisServer } from '../test/support/redis.js';
import { BenchConsumer, type LedgerPayload, type LedgerRow } from './lib/broker-consumer.js';
import { f0, f1, f2 } from './lib/format.js';
import { newNamespace, type Api } from './lib/kube.js';
import { percentile } from './lib/load.js';

export interface BrokerEnv {
  api: Api;
  kubeconfig: string;
  say(line: string): void;
}

const STREAM = 'KUBETX_BENCH';
const SUBJECT = 'kubetx.bench.orders';
const NAME = 'bench';
const SHARDS = DEFAULT_REDIS_SHARDS;
const N = Number(process.env.KUBETX_BENCH_BROKER_N ?? 3000);
const KS = (process.env.KUBETX_BENCH_BROKER_K ?? '1,8,32').split(',').map(Number);
const KEYS_PER_PUBLISHER = 4;
const WARMUP = 400;
const RATE = Number(process.env.KUBETX_BENCH_BROKER_RATE ?? 200);
const STREAM_PUBLISHERS = 8;
const BEFORE_KILL_MS = 3000;
const ON_REDIS_MS = 3000;
const AFTER_BACK_MS = 3000;
const RECOVER_AFTER_MS = 1000;
const RETRY_MS = 10;
/** A row or a drain that makes no progress for this long fails the figure. */
const STALL_MS = 30_000;
/** ~100 bytes of JSON per message, like a small order event. */
const PAD = 'x'.repeat(40);

const now = () => performance.timeOrigin + performance.now();

interface Variant {
  label: string;
  failureThreshold?: number;
  natsTimeoutMs?: number;
}

const VARIANTS: Variant[] = [
  { label: 'defaults (threshold 3, NATS timeout 2 s)' },
  { label: 'threshold 1', failureThreshold: 1 },
  { label: 'threshold 1, NATS timeout 500 ms', failureThreshold: 1, natsTimeoutMs: 500 },
];

interface Row {
  route: Route;
  k: number;
  keys: number;
  n: number;
  publishedPerSec: number;
  deliveredPerSec: number;
  pub: { p50: number; p99: number };
  e2e: { p50: number; p99: number };
  duplicateAcks: number;
  retried: number;
  once: boolean;
}

interface Sent {
  id: string;
  key: string;
  n: number;
  first: number;
  acked: number;
  via: Route;
  duplicate: boolean;
}

interface Failure {
  at: number;
  reason: string;
}

interface FailoverResult {
  variant: Variant;
  flipMs: number;
  deliveryGapMs: number;
  publishGapMs: number;
  longestPublishMs: number;
  failures: Failure[];
  onRedis: number;
  natsRestartMs: number;
  /** NATS healthy → the router's connection reconnected → its first healthy probe → route nats. */
  reconnectMs: number;
  firstProbeMs: number;
  switchBackMs: number;
  /** Publish → applied at the stream's rate: via NATS before the kill, via Redis after the flip. */
  steadyNats: ReturnType<typeof stats>;
  steadyRedis: ReturnType<typeof stats>;
  natsResumeMs: number;
  /** Publishes started after the switch-back that were still acked via Redis, and the last one's ack after the switch-back. */
  redisAfterBack: number;
  redisAfterBackMs: number;
  backGapMs: number;
  published: number;
  once: number;
  lost: number;
  twice: number;
  strays: number;
  duplicateAcks: Record<Route, number>;
  barrierSkips: Record<Route, number>;
  /** The consumer committed a message and its ack failed (it comes again; the barrier answers it). */
  ackFailures: Record<Route, number>;
  inversions: number;
  keysInverted: number;
}

/** Everything the rows share: servers, clients, the consumer. */
interface Harness {
  nats: NatsServer;
  redis: RedisServer;
  kc: k8s.KubeConfig;
  namespace: string;
  jsm: JetStreamManager;
  /** The router's Redis client: fails fast while Redis is down, as RedisQueues asks. */
  redisClient: Redis;
  consumer: BenchConsumer;
  conns: NatsConnection[];
  routers: BrokerRouter[];
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
};

function message(h: Harness, tag: string, i: number, key: string, n: number, sent: number): BrokerMessage {
  const payload: LedgerPayload & { pad: string } = { tag, n, sent, pad: PAD };
  return brokerMessage({ uid: `${tag}-${i}`, branch: 'deliver', key, subject: SUBJECT, namespace: h.namespace, name: `${tag}-${i}`, payload });
}

/** Publishes until acked, retrying an `unavailable` failure after RETRY_MS (the engine retries a failed Deliver the same way, only later). */
async function publishRetrying(router: BrokerRouter, msg: BrokerMessage, failures: Failure[], aborted: () => boolean = () => false): Promise<PublishAck> {
  for (;;) {
    try {
      return await router.publish(msg);
    } catch (err) {
      if (!(err instanceof BrokerError) || err.kind !== 'unavailable' || aborted()) throw err;
      failures.push({ at: now(), reason: `${err.via}/${err.reason}` });
      await sleep(RETRY_MS);
    }
  }
}

/** Waits until the ledger holds `want` distinct ids of `tag`; fails after STALL_MS without progress. */
async function delivered(h: Harness, tag: string, want: number): Promise<void> {
  let seen = -1;
  let progress = Date.now();
  for (;;) {
    const { ids } = h.consumer.count(tag);
    if (ids >= want) return;
    if (ids !== seen) {
      seen = ids;
      progress = Date.now();
    } else if (Date.now() - progress > STALL_MS) {
      throw new Error(`broker: ${tag}: ${ids} of ${want} messages applied, no progress for ${STALL_MS / 1000} s`);
    }
    await sleep(20);
  }
}

/** Waits until neither path holds anything unconsumed or unacked. */
async function drained(h: Harness, queues: RedisQueues): Promise<void> {
  // A consumer ack lost to the kill comes back after a NAK or ack_wait (30 s): give it that long.
  const deadline = Date.now() + 2 * STALL_MS;
  for (;;) {
    const ci = await h.jsm.consumers.info(STREAM, NAME).catch(() => undefined);
    const redisPending = await queues.pendingTotal([NAME]).catch(() => undefined);
    if (ci && ci.num_pending + ci.num_ack_pending === 0 && redisPending === 0) return;
    if (Date.now() > deadline) throw new Error(`broker: the paths are not drained after ${(2 * STALL_MS) / 1000} s (JetStream pending ${ci?.num_pending}/${ci?.num_ack_pending}, Redis ${redisPending})`);
    await sleep(50);
  }
}

async function makeRouter(h: Harness, name: string, o: Omit<Partial<BrokerRouterOptions>, 'nats' | 'redis' | 'routeSwitch'> & { natsTimeoutMs?: number } = {}) {
  const { natsTimeoutMs, ...routerOpts } = o;
  const conn = await connect({ servers: h.nats.url, maxReconnectAttempts: -1, name: `bench-${name}` });
  h.conns.push(conn);
  const queues = new RedisQueues({ redis: h.redisClient, shards: SHARDS });
  const routeSwitch = new RouteSwitch({ kubeConfig: h.kc, namespace: h.namespace, name: `route-${name}`, identity: 'bench' });
  const router = new BrokerRouter({
    nats: new NatsPublisher({ connection: conn, stream: STREAM, ...(natsTimeoutMs ? { timeoutMs: natsTimeoutMs } : {}) }),
    redis: queues,
    routeSwitch,
    identity: 'bench',
    groups: [NAME],
    ...routerOpts,
  });
  h.routers.push(router);
  await router.start();
  return { router, routeSwitch, queues, conn };
}

// ---------------------------------------------------------------- throughput

async function throughputRow(h: Harness, router: BrokerRouter, route: Route, k: number, n: number, tag: string): Promise<Row> {
  const lat: number[] = [];
  const failures: Failure[] = [];
  let next = 0;
  let duplicateAcks = 0;
  let lastAck = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: k }, async (_, p) => {
      const seq = new Array<number>(KEYS_PER_PUBLISHER).fill(0);
      for (let i = next++, j = 0; i < n; i = next++, j = (j + 1) % KEYS_PER_PUBLISHER) {
        const sent = now();
        const ack = await publishRetrying(router, message(h, tag, i, `${tag}-p${p}-k${j}`, seq[j]!++, sent), failures);
        const done = now();
        if (ack.via !== route) throw new Error(`broker: ${tag}: published via ${ack.via}, the route is ${route}`);
        lat.push(done - sent);
        lastAck = Math.max(lastAck, done);
        if (ack.duplicate) duplicateAcks++;
      }
    }),
  );
  await delivered(h, tag, n);
  const rows = h.consumer.rows(tag);
  const last = Math.max(...rows.map((r) => r.at));
  return {
    route,
    k,
    keys: k * KEYS_PER_PUBLISHER,
    n,
    publishedPerSec: n / ((lastAck - t0) / 1000),
    deliveredPerSec: n / ((last - t0) / 1000),
    pub: stats(lat),
    e2e: stats(rows.map((r) => r.at - r.sent)),
    duplicateAcks,
    retried: failures.length,
    once: rows.length === n && new Set(rows.map((r) => r.id)).size === n,
  };
}

async function throughput(h: Harness, say: (line: string) => void): Promise<Row[]> {
  const { router, routeSwitch } = await makeRouter(h, 'throughput');
  const flip = async (to: Route) => {
    await routeSwitch.flip(to, { reason: 'BenchRows', manual: true, by: 'bench' });
    if (router.route !== to) throw new Error(`broker: the route did not follow the flip to ${to}`);
  };
  const rows: Row[] = [];
  try {
    for (const route of ['nats', 'redis'] as const) {
      await flip(route);
      await throughputRow(h, router, route, 8, WARMUP, `warm-${route}`);
    }
    for (const k of KS) {
      for (const route of ['nats', 'redis'] as const) {
        await flip(route);
        const row = await throughputRow(h, router, route, k, N, `${route}-k${k}`);
        rows.push(row);
        say(
          `broker: ${route}, ${k} publisher(s) × ${KEYS_PER_PUBLISHER} keys, ${N} messages: published ${f0(row.publishedPerSec)} msgs/s, delivered ${f0(row.deliveredPerSec)} msgs/s; ` +
            `publish p50 ${f2(row.pub.p50)} ms, p99 ${f2(row.pub.p99)} ms; publish → applied p50 ${f1(row.e2e.p50)} ms, p99 ${f1(row.e2e.p99)} ms` +
            `${row.duplicateAcks ? `; ${row.duplicateAcks} duplicate acks` : ''}${row.retried ? `; ${row.retried} publishes retried` : ''}${row.once ? '' : '; NOT every id applied exactly once'}`,
        );
      }
    }
  } finally {
    router.stop();
  }
  return rows;
}

// ---------------------------------------------------------------- failover

/** K publishers, each sending to its own keys in turn at RATE/K msgs/s, until stopped. */
function steadyStream(h: Harness, router: BrokerRouter, tag: string) {
  const sent: Sent[] = [];
  const failures: Failure[] = [];
  const intervalMs = (STREAM_PUBLISHERS * 1000) / RATE;
  let stopped = false;
  let aborted = false;
  let inFlight = 0;
  let i = 0;
  const running = Promise.all(
    Array.from({ length: STREAM_PUBLISHERS }, async (_, p) => {
      await sleep((p * intervalMs) / STREAM_PUBLISHERS); // spread the publishers over the interval
      const seq = new Array<number>(KEYS_PER_PUBLISHER).fill(0);
      for (let j = 0; !stopped; j = (j + 1) % KEYS_PER_PUBLISHER) {
        const first = now();
        const key = `${tag}-p${p}-k${j}`;
        const n = seq[j]!++;
        const msg = message(h, tag, i++, key, n, first);
        inFlight++;
        const ack = await publishRetrying(router, msg, failures, () => aborted).finally(() => inFlight--);
        const acked = now();
        sent.push({ id: msg.id, key, n, first, acked, via: ack.via, duplicate: ack.duplicate });
        const wait = intervalMs - (acked - first);
        if (wait > 0) await sleep(wait);
      }
    }),
  );
  return {
    sent,
    failures,
    inFlight: () => inFlight,
    async stop() {
      stopped = true;
      await running;
    },
    /** Stops without waiting for the messages in flight to be acked (a failed figure). */
    async abort() {
      stopped = aborted = true;
      await running.catch(() => undefined);
    },
  };
}

const until = async <T>(what: string, probe: () => T | undefined, timeoutMs = STALL_MS): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`broker: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(10);
  }
};

const delta = (a: SubscriptionCounters, b: SubscriptionCounters, field: 'duplicates' | 'failed') => ({ nats: b.nats[field] - a.nats[field], redis: b.redis[field] - a.redis[field] });

/** Per key, in the order the consumer applied them: how many times a message came before an earlier one of its key. */
function orderInversions(rows: LedgerRow[]): { inversions: number; keys: number } {
  const last = new Map<string, number>();
  const bad = new Set<string>();
  let inversions = 0;
  for (const r of rows) {
    const prev = last.get(r.key);
    if (prev !== undefined && r.n < prev) {
      inversions++;
      bad.add(r.key);
    } else last.set(r.key, r.n);
  }
  return { inversions, keys: bad.size };
}

async function failover(h: Harness, v: Variant, index: number, say: (line: string) => void): Promise<FailoverResult> {
  const tag = `failover${index}`;
  const flips: Array<{ to: Route; at: number }> = [];
  const { router, queues, conn } = await makeRouter(h, tag, {
    recoverAfterMs: RECOVER_AFTER_MS,
    ...(v.failureThreshold ? { failureThreshold: v.failureThreshold } : {}),
    ...(v.natsTimeoutMs ? { natsTimeoutMs: v.natsTimeoutMs } : {}),
    onFlip: (_from, to) => flips.push({ to, at: now() }),
  });
  let reconnectedAt = NaN;
  void (async () => {
    for await (const st of conn.status()) if (st.type === 'reconnect' && Number.isNaN(reconnectedAt)) reconnectedAt = now();
  })().catch(() => undefined);
  const before = await h.consumer.counters();
  const stream = steadyStream(h, router, tag);
  try {
    await sleep(BEFORE_KILL_MS);
    // The worst moment: a publish awaits its ack (at RATE msgs/s one is in flight a fraction of the time).
    await until('a publish in flight', () => (stream.inFlight() > 0 ? true : undefined));
    const killedAt = now();
    await h.nats.kill(); // SIGKILL
    const toRedis = await until('the router to fail over', () => flips.find((f) => f.to === 'redis'));
    await sleep(ON_REDIS_MS);
    const restartAt = now();
    await h.nats.restart(); // resolves once /healthz answers: JetStream has recovered its streams
    const healthyAt = now();
    let healthySince: number | undefined;
    const toNats = await until('the router to switch back', () => {
      const hs = router.status().natsHealthySince; // Date.now() ms: onto this file's clock
      if (healthySince === undefined && hs !== undefined) healthySince = now() - (Date.now() - hs);
      return flips.find((f) => f.to === 'nats');
    });
    await sleep(AFTER_BACK_MS);
    await stream.stop();
    const { sent, failures } = stream;
    await delivered(h, tag, new Set(sent.map((s) => s.id)).size);
    await drained(h, queues);
    const after = await h.consumer.counters();

    const rows = h.consumer.rows(tag);
    const applied = new Map<string, number>();
    for (const r of rows) applied.set(r.id, (applied.get(r.id) ?? 0) + 1);
    const ids = new Set(sent.map((s) => s.id));
    const acks = [...sent].sort((a, b) => a.acked - b.acked);
    const lastAckBefore = acks.filter((s) => s.acked < killedAt).at(-1)?.acked ?? NaN;
    const firstRedisAck = acks.find((s) => s.via === 'redis')?.acked ?? NaN;
    const lastDeliveryBefore = rows.filter((r) => r.at < killedAt).at(-1)?.at ?? NaN;
    const firstRedisDelivery = rows.find((r) => r.path === 'redis')?.at ?? NaN;
    const firstNatsAfterBack = rows.find((r) => r.path === 'nats' && r.at > toNats.at)?.at ?? NaN;
    const order = orderInversions(rows);
    const lateRedis = sent.filter((s) => s.via === 'redis' && s.first > toNats.at);
    const result: FailoverResult = {
      variant: v,
      flipMs: toRedis.at - killedAt,
      deliveryGapMs: firstRedisDelivery - lastDeliveryBefore,
      publishGapMs: firstRedisAck - lastAckBefore,
      longestPublishMs: Math.max(...sent.map((s) => s.acked - s.first)),
      failures,
      onRedis: sent.filter((s) => s.via === 'redis').length,
      natsRestartMs: healthyAt - restartAt,
      reconnectMs: reconnectedAt - healthyAt,
      firstProbeMs: (healthySince ?? NaN) - healthyAt,
      switchBackMs: toNats.at - healthyAt,
      steadyNats: stats(rows.filter((r) => r.path === 'nats' && r.sent < killedAt).map((r) => r.at - r.sent)),
      steadyRedis: stats(rows.filter((r) => r.path === 'redis' && r.sent > toRedis.at && r.sent < restartAt).map((r) => r.at - r.sent)),
      natsResumeMs: firstNatsAfterBack - toNats.at,
      redisAfterBack: lateRedis.length,
      redisAfterBackMs: Math.max(0, ...lateRedis.map((s) => s.acked - toNats.at)),
      backGapMs: longestGap(rows.filter((r) => r.at >= healthyAt).map((r) => r.at)),
      published: ids.size,
      once: [...ids].filter((id) => applied.get(id) === 1).length,
      lost: [...ids].filter((id) => !applied.has(id)).length,
      twice: [...applied.values()].filter((c) => c > 1).length,
      strays: [...applied.keys()].filter((id) => !ids.has(id)).length,
      duplicateAcks: { nats: sent.filter((s) => s.duplicate && s.via === 'nats').length, redis: sent.filter((s) => s.duplicate && s.via === 'redis').length },
      barrierSkips: delta(before, after, 'duplicates'),
      ackFailures: delta(before, after, 'failed'),
      inversions: order.inversions,
      keysInverted: order.keys,
    };
    say(
      `broker failover, ${v.label}: SIGKILL → route redis ${f0(result.flipMs)} ms; no delivery for ${f0(result.deliveryGapMs)} ms, no publish acked for ${f0(result.publishGapMs)} ms, ` +
        `longest single publish ${f0(result.longestPublishMs)} ms; ${failures.length} publishes failed and retried (${reasons(failures)}); ${result.onRedis} messages via Redis; ` +
        `NATS restarted (healthy ${f0(result.natsRestartMs)} ms after the start) → route nats ${f0(result.switchBackMs)} ms (client reconnected after ${f0(result.reconnectMs)} ms, first healthy probe after ${f0(result.firstProbeMs)} ms), → first delivery via NATS ${f0(result.natsResumeMs)} ms after that, ${result.redisAfterBack} publishes still via Redis after it (longest delivery gap from NATS healthy on ${f0(result.backGapMs)} ms); ` +
        `${result.published} published, ${result.once} applied exactly once, ${result.lost} lost, ${result.twice} applied twice, ${result.strays} unknown; ` +
        `duplicate acks nats/redis ${result.duplicateAcks.nats}/${result.duplicateAcks.redis}, skipped by the barrier nats/redis ${result.barrierSkips.nats}/${result.barrierSkips.redis}, consumer handler/ack failures nats/redis ${result.ackFailures.nats}/${result.ackFailures.redis}; ` +
        `per-key order: ${result.inversions} messages applied after a later one of their key (${result.keysInverted} keys); ` +
        `publish → applied at ${RATE} msgs/s p50/p99 via NATS ${f1(result.steadyNats.p50)}/${f1(result.steadyNats.p99)} ms, via Redis ${f1(result.steadyRedis.p50)}/${f1(result.steadyRedis.p99)} ms (max ${f0(result.steadyRedis.max)} ms)`,
    );
    return result;
  } finally {
    await stream.abort();
    router.stop();
    await conn.close().catch(() => undefined);
  }
}

/** The longest time between two consecutive times of `sorted`. */
function longestGap(sorted: number[]): number {
  let gap = 0;
  for (let i = 1; i < sorted.length; i++) gap = Math.max(gap, sorted[i]! - sorted[i - 1]!);
  return gap;
}

function reasons(failures: Failure[]): string {
  const m = new Map<string, number>();
  for (const f of failures) m.set(f.reason, (m.get(f.reason) ?? 0) + 1);
  return [...m].map(([r, c]) => `${r} ×${c}`).join(', ') || 'none';
}

// ---------------------------------------------------------------- figure

export async function brokerFigure(env: BrokerEnv): Promise<string> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-bench-broker-'));
  const [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(env.kubeconfig);
  reuseConnections(kc); // as src/main.ts does for every client of the operator
  const conns: NatsConnection[] = [];
  const routers: BrokerRouter[] = [];
  const redisClient = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true });
  redisClient.on('error', () => undefined);
  let consumer: BenchConsumer | undefined;
  try {
    await redisClient.connect();
    const admin = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
    conns.push(admin);
    const jsm = await jetstreamManager(admin);
    await jsm.streams.add({ name: STREAM, subjects: ['kubetx.bench.>'], storage: StorageType.File, duplicate_window: 120e9 });
    consumer = await BenchConsumer.start({ db: join(dir, 'consumer.db'), log: join(dir, 'consumer.log'), natsUrl: nats.url, redisUrl: redis.url, stream: STREAM, subject: SUBJECT, name: NAME, shards: SHARDS });
    const namespace = await newNamespace(env.api, 'bench-broker');
    const h: Harness = { nats, redis, kc, namespace, jsm, redisClient, consumer, conns, routers };
    env.say(`broker: nats-server (JetStream, file store) and redis-server up, consumer process ready, in ${f1((Date.now() - t0) / 1000)} s`);

    const rows = await throughput(h, env.say);
    const results: FailoverResult[] = [];
    for (const [i, v] of VARIANTS.entries()) results.push(await failover(h, v, i, env.say));
    const final = await consumer.stop();
    const warnings = consumer.warnings();
    consumer = undefined;
    return report(rows, results, final, warnings, env.say);
  } finally {
    for (const r of routers) r.stop();
    consumer?.kill();
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    redisClient.disconnect();
    await Promise.all([nats.stop(), redis.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(rows: Row[], results: FailoverResult[], counters: SubscriptionCounters, warnings: number, say: (line: string) => void): string {
  const row = (route: Route, k: number) => rows.find((r) => r.route === route && r.k === k)!;
  const ratios = KS.map((k) => ({ k, delivered: row('redis', k).deliveredPerSec / row('nats', k).deliveredPerSec, published: row('redis', k).publishedPerSec / row('nats', k).publishedPerSec, p50: row('redis', k).pub.p50 / row('nats', k).pub.p50 }));
  const ratioText = ratios.map((r) => `K=${r.k}: delivered ${f2(r.delivered)}×, published ${f2(r.published)}×, publish p50 ${f2(r.p50)}×`).join('; ');
  const allOnce = rows.every((r) => r.once) && results.every((r) => r.once === r.published && r.strays === 0);
  const summary =
    `Redis fallback ÷ NATS, same run: ${ratioText}. ` +
    `Failover (${results.map((r) => `${r.variant.label}: ${f0(r.deliveryGapMs)} ms without a delivery, ${f0(r.publishGapMs)} ms without a publish ack, longest publish ${f0(r.longestPublishMs)} ms, switch-back ${f0(r.switchBackMs)} ms after NATS was healthy`).join('; ')}). ` +
    `${allOnce ? 'Every published id applied exactly once' : 'NOT every published id applied exactly once'} ` +
    `(${rows.reduce((a, r) => a + r.n, 0) + results.reduce((a, r) => a + r.published, 0)} messages); ` +
    `the barrier skipped ${results.reduce((a, r) => a + r.barrierSkips.nats + r.barrierSkips.redis, 0)} copies seen again, the brokers answered ${results.reduce((a, r) => a + r.duplicateAcks.nats + r.duplicateAcks.redis, 0)} publishes as duplicates.`;
  say(`broker: ${summary}`);

  const table = [
    '| route | publishers × keys each | messages | published msgs/s | delivered msgs/s | publish p50 / p99 ms | publish → applied p50 / p99 ms | duplicate acks | applied exactly once |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.route} | ${r.k} × ${KEYS_PER_PUBLISHER} | ${r.n} | ${f0(r.publishedPerSec)} | ${f0(r.deliveredPerSec)} | ${f2(r.pub.p50)} / ${f2(r.pub.p99)} | ${f1(r.e2e.p50)} / ${f1(r.e2e.p99)} | ${r.duplicateAcks} | ${r.once ? 'yes' : '**no**'} |`),
  ];
  const ratioTable = ['| publishers | delivered redis ÷ nats | published redis ÷ nats | publish p50 redis ÷ nats |', '| ---: | ---: | ---: | ---: |', ...ratios.map((r) => `| ${r.k} | ${f2(r.delivered)} | ${f2(r.published)} | ${f2(r.p50)} |`)];
  const fr = (label: string, f: (r: FailoverResult) => string) => `| ${label} | ${results.map(f).join(' | ')} |`;
  const failoverTable = [
    `| | ${results.map((r) => r.variant.label).join(' | ')} |`,
    `| --- | ${results.map(() => '---:').join(' | ')} |`,
    fr('SIGKILL → route redis (router flipped the ConfigMap)', (r) => `${f0(r.flipMs)} ms`),
    fr('**delivery gap**: last delivery before the kill → first via Redis', (r) => `**${f0(r.deliveryGapMs)} ms**`),
    fr('publish gap: last ack before the kill → first ack via Redis', (r) => `${f0(r.publishGapMs)} ms`),
    fr('longest single publish (first attempt → ack, retries included)', (r) => `${f0(r.longestPublishMs)} ms`),
    fr('publishes failed and retried', (r) => `${r.failures.length} (${reasons(r.failures)})`),
    fr('messages published via Redis', (r) => String(r.onRedis)),
    fr('nats-server restart → /healthz OK', (r) => `${f0(r.natsRestartMs)} ms`),
    fr('NATS healthy → the router\'s client reconnected', (r) => `${f0(r.reconnectMs)} ms`),
    fr('NATS healthy → the router\'s first healthy probe', (r) => `${f0(r.firstProbeMs)} ms`),
    fr(`**switch-back**: NATS healthy → route nats (recoverAfterMs ${RECOVER_AFTER_MS})`, (r) => `**${f0(r.switchBackMs)} ms**`),
    fr('route nats → first delivery via NATS', (r) => `${f0(r.natsResumeMs)} ms`),
    fr('publishes started after the switch-back and still acked via Redis (last ack after the switch-back)', (r) => `${r.redisAfterBack} (${f0(r.redisAfterBackMs)} ms)`),
    fr('longest time without a delivery once NATS was healthy', (r) => `${f0(r.backGapMs)} ms`),
    fr('messages published / applied exactly once / lost / applied twice', (r) => `${r.published} / ${r.once} / ${r.lost} / ${r.twice}`),
    fr('duplicate acks from the broker: nats / redis', (r) => `${r.duplicateAcks.nats} / ${r.duplicateAcks.redis}`),
    fr('copies skipped by the barrier: via nats / via redis', (r) => `${r.barrierSkips.nats} / ${r.barrierSkips.redis}`),
    fr('consumer: committed but the ack failed (comes again): nats / redis', (r) => `${r.ackFailures.nats} / ${r.ackFailures.redis}`),
    fr(`publish → applied p50 / p99 at ${RATE} msgs/s: via NATS before the kill`, (r) => `${f1(r.steadyNats.p50)} / ${f1(r.steadyNats.p99)} ms`),
    fr(`publish → applied p50 / p99 at ${RATE} msgs/s: via Redis after the flip`, (r) => `${f1(r.steadyRedis.p50)} / ${f1(r.steadyRedis.p99)} ms (max ${f0(r.steadyRedis.max)})`),
    fr('per-key order as applied: messages after a later one of their key (keys)', (r) => `${r.inversions} (${r.keysInverted})`),
  ];
  return (
    `### Broker delivery: NATS JetStream and the sharded Redis fallback\n\n` +
    `nats-server (JetStream, file store) and redis-server (AOF everysec) on loopback; the publisher is the operator's library (BrokerRouter, NatsPublisher, RedisQueues over ${SHARDS} shards, RouteSwitch on a ConfigMap of this control plane) in the benchmark process; ` +
    `the consumer is the SDK's \`subscribe\` on both paths with a SqliteBarrier (WAL, synchronous=NORMAL) in a process of its own, its handler writing one ledger row per message inside the barrier's transaction. ` +
    `Messages of ~100 bytes of JSON. Throughput: K publishers, each with ${KEYS_PER_PUBLISHER} keys of its own taken in turn, awaiting every publish (one message per key in flight); ${N} messages per row after ${WARMUP} of warm-up per route; ` +
    `rows alternate nats, redis for each K, the route flipped by hand (RouteSwitch.flip, manual). Published msgs/s = messages ÷ (first publish → last ack); delivered msgs/s = messages ÷ (first publish → last handler commit); ` +
    `publish latency = the \`publish()\` call; publish → applied = publish start → the handler's commit, as the ledger records it.\n\n` +
    `${table.join('\n')}\n\n${ratioTable.join('\n')}\n\n` +
    `Failover: ${STREAM_PUBLISHERS} publishers, ${RATE} msgs/s in all, a failed publish retried after ${RETRY_MS} ms; nats-server SIGKILLed after ${BEFORE_KILL_MS / 1000} s at a moment a publish awaits its ack, restarted ${ON_REDIS_MS / 1000} s after the flip, ` +
    `${AFTER_BACK_MS / 1000} s more after the switch-back, then the stream stops and both paths drain. Router defaults except recoverAfterMs ${RECOVER_AFTER_MS} ms (default 10 s) and the column's changes; ` +
    `the clients' reconnect settings are nats.js's defaults (2 s between attempts), unlimited attempts.\n\n` +
    `${failoverTable.join('\n')}\n\n` +
    `Consumer, whole run: nats ${JSON.stringify(counters.nats)}, redis ${JSON.stringify(counters.redis)}; ${warnings} warnings logged by the subscription.\n\n` +
    summary
  );
}

/**
 * The broker delivery library (src/brokers/, issue 21) against the real
 * components: nats-server with JetStream, redis-server, and the shared switch
 * as a ConfigMap on the test control plane.
 *
 * - healthy: 200 messages over 20 keys reach NATS once each, per-key order
 *   kept; republishing the same ids stores nothing new.
 * - NATS SIGKILLed while 20 per-key publishers run: the switch says redis
 *   within FLIP_BOUND_MS of the kill, nothing is lost, per-key order holds
 *   across NATS-then-Redis, the ConfigMap records reason and since.
 * - NATS back: the route stays redis while Redis holds unconsumed entries;
 *   once the test's consumer group has read and acked them the route comes
 *   back to nats, later messages go to NATS (order: NATS, Redis, NATS).
 * - Redis down while NATS is down: publish fails `unavailable` within the
 *   timeouts; once Redis is back the retry is stored once; an XADD error
 *   inside the dedup script leaves nothing half-written.
 * - two replicas share the switch: one flips, the other follows within pollMs;
 *   a manual flip is not undone by the health checks until cleared.
 *
 * Each test uses its own ConfigMap, Redis prefix and NATS subject. The
 * figures (flip time, failover gap, switch-back time, messages/s) are printed.
 */
import * as k8s from '@kubernetes/client-node';
import { AckPolicy, jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { sleep } from '../../src/controller/timers.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BrokerError,
  BrokerRouter,
  brokerMessage,
  isUnavailable,
  NatsPublisher,
  QUEUES_CLOSED,
  RedisQueues,
  redisDedupKey,
  RouteSwitch,
  type BrokerMessage,
  type PublishAck,
  type Route,
} from '../../src/brokers/index.js';
import { eventually, freshNamespace, kubeConfig } from '../support/env.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const STREAM = 'KUBETX_ORDERS';
const SHARDS = 128;
const GROUP = 'test';
const POLL_MS = 200;
const PROBE_MS = 100;
const RECOVER_AFTER_MS = 1000;
const NATS_TIMEOUT_MS = 500;
const REDIS_TIMEOUT_MS = 500;
const THRESHOLD = 3;
/** From the SIGKILL to the ConfigMap saying redis: THRESHOLD failed publishes (each at most NATS_TIMEOUT_MS) plus one ConfigMap write, with slack. */
const FLIP_BOUND_MS = THRESHOLD * NATS_TIMEOUT_MS + 1500;
const KEYS = Array.from({ length: 20 }, (_, i) => `key-${i}`);

interface Sent {
  id: string;
  key: string;
  index: number;
  via: Route;
  at: number;
  ack: PublishAck;
}

describe('broker router: NATS JetStream, failover to sharded Redis, shared switch', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let namespace: string;
  let nats: NatsServer;
  let redis: RedisServer;
  let nc: NatsConnection; // the test's own (reader) connection
  let jsm: JetStreamManager;
  let tr: Redis; // the test's own Redis client (consumer)
  const conns: NatsConnection[] = [];
  const redisClients: Redis[] = [];
  const routers: BrokerRouter[] = [];
  const figures: Record<string, string> = {};

  const natsConn = async () => {
    const c = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 0 });
    conns.push(c);
    return c;
  };
  const redisClient = async () => {
    // Fail fast while Redis is down (what the failover path needs), reconnect every 100 ms.
    const r = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: REDIS_TIMEOUT_MS, retryStrategy: () => 100, lazyConnect: true });
    r.on('error', () => undefined);
    redisClients.push(r);
    await r.connect();
    return r;
  };

  const makeRouter = async (cm: string, prefix: string, identity: string, extra: { onFlip?: (from: Route, to: Route, reason: string) => void; registry?: Registry } = {}) => {
    const routeSwitch = new RouteSwitch({ kubeConfig: kc, namespace, name: cm, identity, pollMs: POLL_MS });
    const client = await redisClient();
    const queues = new RedisQueues({ redis: client, prefix, shards: SHARDS, timeoutMs: REDIS_TIMEOUT_MS });
    const router = new BrokerRouter({
      nats: new NatsPublisher({ connection: await natsConn(), timeoutMs: NATS_TIMEOUT_MS, stream: STREAM }),
      redis: queues,
      routeSwitch,
      identity,
      failureThreshold: THRESHOLD,
      failureWindowMs: 5000,
      probeMs: PROBE_MS,
      recoverAfterMs: RECOVER_AFTER_MS,
      groups: [GROUP],
      ...extra,
    });
    routers.push(router);
    await router.start();
    return { router, routeSwitch, queues, client };
  };

  const readConfigMap = async (name: string) => (await core.readNamespacedConfigMap({ name, namespace })).data ?? {};

  const msgFor = (subject: string, key: string, index: number): BrokerMessage =>
    brokerMessage({ uid: `${subject}-${key}-${index}`, branch: 'ship', key, subject, namespace, name: `tx-${key}-${index}`, payload: { key, index } });

  /**
   * One sequential publisher per key (at most one message per key in flight,
   * as per-key order requires), retrying an `unavailable` failure after 10 ms
   * as the engine would, until `perKey` messages each or `stop()`.
   */
  const publishAll = async (
    router: BrokerRouter,
    subject: string,
    next: Map<string, number>,
    sent: Sent[],
    opts: { perKey?: number; stop?: () => boolean; errors?: BrokerError[] },
  ) => {
    await Promise.all(
      KEYS.map(async (key) => {
        const start = next.get(key) ?? 0;
        for (let i = start; opts.perKey !== undefined ? i < start + opts.perKey : !opts.stop!(); i++) {
          const msg = msgFor(subject, key, i);
          for (;;) {
            try {
              const ack = await router.publish(msg);
              sent.push({ id: msg.id, key, index: i, via: ack.via, at: Date.now(), ack });
              break;
            } catch (err) {
              if (!isUnavailable(err)) throw err;
              opts.errors?.push(err);
              await sleep(10); // the caller's retry backoff
            }
          }
          next.set(key, i + 1);
        }
      }),
    );
  };

  /** Every message of `subject` in the stream, in stream order. */
  const readNats = async (subject: string) => {
    const info = await jsm.streams.info(STREAM);
    const out: Array<{ seq: number; id: string; key: string }> = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(STREAM, { seq });
      if (m && m.subject === subject) out.push({ seq, id: m.header.get('Nats-Msg-Id'), key: m.header.get('Kubetx-Key') });
    }
    return out;
  };

  /** Every entry of `subject`'s shards, shard by shard in stream order. */
  const readRedis = async (prefix: string, subject: string) => {
    const keys = Array.from({ length: SHARDS }, (_, i) => `${prefix}:${subject}:${i}`);
    const pipe = tr.pipeline();
    for (const k of keys) pipe.xrange(k, '-', '+');
    const res = (await pipe.exec()) ?? [];
    return keys.flatMap((stream, i) =>
      ((res[i]?.[1] ?? []) as Array<[string, string[]]>).map(([entryId, fields]) => ({ stream, entryId, id: fields[1]!, key: fields[3]!, transaction: fields[5]!, data: fields[7]! })),
    );
  };

  /** The test's consumer: a group on every shard (from the start), XREADGROUP + XACK until nothing is left. */
  const drainRedis = async (prefix: string, subject: string) => {
    const keys = Array.from({ length: SHARDS }, (_, i) => `${prefix}:${subject}:${i}`);
    const pipe = tr.pipeline();
    for (const k of keys) pipe.xgroup('CREATE', k, GROUP, '0', 'MKSTREAM');
    await pipe.exec(); // BUSYGROUP for groups made before is fine
    const consumed: Array<{ stream: string; id: string; key: string }> = [];
    for (;;) {
      const res = (await tr.xreadgroup('GROUP', GROUP, 'c1', 'COUNT', 1000, 'STREAMS', ...keys, ...keys.map(() => '>'))) as Array<[string, Array<[string, string[]]>]> | null;
      if (!res) break;
      const ack = tr.pipeline();
      for (const [stream, entries] of res) {
        for (const [, fields] of entries) consumed.push({ stream, id: fields[1]!, key: fields[3]! });
        ack.xack(stream, GROUP, ...entries.map(([entryId]) => entryId));
      }
      await ack.exec();
    }
    return consumed;
  };

  /** The longest time between two consecutive successful publishes. */
  const longestGap = (sent: Sent[]) => {
    const times = sent.map((s) => s.at).sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    return gap;
  };

  const byKey = <T extends { key: string }>(items: T[]) => {
    const m = new Map<string, T[]>();
    for (const it of items) m.set(it.key, [...(m.get(it.key) ?? []), it]);
    return m;
  };

  const metricValue = async (registry: Registry, name: string, labels: Record<string, string>) => {
    const m = await registry.getSingleMetric(name)!.get();
    return m.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
  };

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    kc = kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    namespace = await freshNamespace(kc, 'broker');
    nc = await natsConn();
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: ['orders.>'], storage: StorageType.File, duplicate_window: 120e9 });
    tr = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    tr.on('error', () => undefined);
    redisClients.push(tr);
  });

  afterAll(async () => {
    for (const r of routers) r.stop();
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    for (const r of redisClients) r.disconnect();
    await Promise.all([nats?.stop(), redis?.stop()]);
    process.stderr.write(`[broker-router] figures:\n${Object.entries(figures).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
  });

  it('healthy: 200 messages over 20 keys reach NATS once each in per-key order; republishing stores nothing new', async () => {
    const registry = new Registry();
    const { router } = await makeRouter('route-healthy', 'h', 'replica-h', { registry });
    expect(router.route).toBe('nats');
    expect(await readConfigMap('route-healthy')).toMatchObject({ route: 'nats', reason: 'Initial', changedBy: 'replica-h' });

    const subject = 'orders.healthy';
    const sent: Sent[] = [];
    const started = Date.now();
    await publishAll(router, subject, new Map(), sent, { perKey: 10 });
    figures['NATS publish rate (20 keys, one in flight per key)'] = `${Math.round(sent.length / ((Date.now() - started) / 1000))} msg/s`;
    expect(sent).toHaveLength(200);
    expect(sent.every((s) => s.ack.via === 'nats' && !s.ack.duplicate && s.ack.stream === STREAM)).toBe(true);

    // A durable JetStream consumer reads them: 200 distinct ids, each key's in publish order.
    await jsm.consumers.add(STREAM, { durable_name: 'healthy', ack_policy: AckPolicy.Explicit, filter_subject: subject });
    const consumer = await jetstream(nc).consumers.get(STREAM, 'healthy');
    const got: Array<{ id: string; key: string }> = [];
    while (got.length < 200) {
      const batch = await consumer.fetch({ max_messages: 200 - got.length, expires: 2000 });
      for await (const m of batch) {
        got.push({ id: m.headers!.get('Nats-Msg-Id'), key: m.headers!.get('Kubetx-Key') });
        expect(m.headers!.get('Kubetx-Transaction')).toMatch(new RegExp(`^${namespace}/tx-key-`));
        m.ack();
      }
    }
    expect(new Set(got.map((g) => g.id)).size).toBe(200);
    const published = byKey(sent.sort((a, b) => a.index - b.index));
    for (const [key, items] of byKey(got)) expect(items.map((g) => g.id)).toEqual(published.get(key)!.map((s) => s.id));

    // The same ids again: duplicates, answered with the first seq; nothing new stored.
    const before = (await jsm.streams.info(STREAM)).state.messages;
    const again: PublishAck[] = [];
    for (const s of sent) again.push(await router.publish(msgFor(subject, s.key, s.index)));
    expect(again.every((a) => a.via === 'nats' && a.duplicate)).toBe(true);
    expect(again.map((a) => (a.via === 'nats' ? a.seq : 0))).toEqual(sent.map((s) => (s.ack.via === 'nats' ? s.ack.seq : -1)));
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(before);
    expect(await metricValue(registry, 'kubetx_broker_publish_total', { route: 'nats', result: 'ok' })).toBe(200);
    expect(await metricValue(registry, 'kubetx_broker_publish_total', { route: 'nats', result: 'duplicate' })).toBe(200);
    expect(await metricValue(registry, 'kubetx_broker_route', { route: 'nats' })).toBe(1);

    // A subject no stream captures is a configuration error, not an outage: rejected, no failover.
    const stray = brokerMessage({ uid: 'u-stray', branch: 'b', key: 'k', subject: 'nostream.here', namespace, name: 'tx', payload: {} });
    for (let i = 0; i < THRESHOLD + 1; i++) {
      await expect(router.publish(stray)).rejects.toMatchObject({ kind: 'rejected', via: 'nats', reason: 'NoStream' });
    }
    expect(router.route).toBe('nats');
    router.stop();
  });

  // Shared by the next two tests: one scenario, NATS killed then back.
  const f = { subject: 'orders.failover', cm: 'route-failover', prefix: 'f', next: new Map<string, number>(), sent: [] as Sent[] };
  let failover: Awaited<ReturnType<typeof makeRouter>>;
  const registryF = new Registry();
  let natsRestartedAt = 0;

  it('NATS SIGKILLed mid-stream: the switch says redis within the bound, nothing lost, per-key order NATS-then-Redis', async () => {
    const flips: Array<{ from: Route; to: Route; reason: string; at: number }> = [];
    failover = await makeRouter(f.cm, f.prefix, 'replica-f', { registry: registryF, onFlip: (from, to, reason) => flips.push({ from, to, reason, at: Date.now() }) });
    const { router } = failover;
    const errors: BrokerError[] = [];
    let stop = false;
    const running = publishAll(router, f.subject, f.next, f.sent, { stop: () => stop, errors });

    await eventually('100 messages on NATS', async () => (f.sent.length >= 100 ? true : undefined), 20_000);
    const killedAt = Date.now();
    await nats.kill();
    const cm = await eventually('the switch ConfigMap to say redis', async () => {
      const d = await readConfigMap(f.cm);
      return d.route === 'redis' ? { d, at: Date.now() } : undefined;
    }, FLIP_BOUND_MS + 5000);
    const flipMs = cm.at - killedAt;
    figures['flip time (SIGKILL → ConfigMap says redis, polled every 100 ms)'] = `${flipMs} ms (router's own flip after ${flips[0]!.at - killedAt} ms; bound ${FLIP_BOUND_MS} ms)`;
    expect(flipMs).toBeLessThan(FLIP_BOUND_MS);
    expect(cm.d).toMatchObject({ route: 'redis', reason: 'NatsUnavailable', changedBy: 'replica-f' });
    expect(cm.d.message).toMatch(/consecutive NATS publishes failed/);
    expect(new Date(cm.d.since!).toISOString()).toBe(cm.d.since); // RFC 3339
    expect(Date.parse(cm.d.since!)).toBeGreaterThanOrEqual(killedAt - 1000);
    expect(flips).toEqual([{ from: 'nats', to: 'redis', reason: 'NatsUnavailable', at: expect.any(Number) }]);

    const redisAt = f.sent.filter((s) => s.via === 'redis').length;
    await eventually('100 messages on Redis', async () => (f.sent.filter((s) => s.via === 'redis').length >= redisAt + 100 ? true : undefined), 20_000);
    stop = true;
    await running;
    figures['failover gap (longest time without a successful publish)'] = `${longestGap(f.sent)} ms`;
    figures['publish failures the callers retried during failover'] = `${errors.length} (${[...new Set(errors.map((e) => e.reason))].join(', ')})`;
    expect(errors.every((e) => e.kind === 'unavailable' && e.via === 'nats')).toBe(true);
    expect(await metricValue(registryF, 'kubetx_broker_flips_total', { from: 'nats', to: 'redis', reason: 'NatsUnavailable' })).toBe(1);
    expect(await metricValue(registryF, 'kubetx_broker_route', { route: 'redis' })).toBe(1);

    // Per key, the routes run nats…nats redis…redis: no message went to NATS after an earlier one went to Redis.
    for (const [, items] of byKey([...f.sent].sort((a, b) => a.index - b.index))) {
      const vias = items.map((s) => s.via).join(' ');
      expect(vias).toMatch(/^(nats ?)*(redis ?)*$/);
    }

    // Nothing lost: every acknowledged id is where its ack says (NATS's store survives the SIGKILL).
    await nats.restart();
    natsRestartedAt = Date.now();
    await eventually('JetStream to answer', () => jsm.streams.info(STREAM).then(() => true), 20_000);
    const inNats = await readNats(f.subject);
    const inRedis = await readRedis(f.prefix, f.subject);
    const natsIds = new Set(inNats.map((m) => m.id));
    const redisIds = new Set(inRedis.map((m) => m.id));
    expect(f.sent.filter((s) => s.via === 'nats' && !natsIds.has(s.id))).toEqual([]);
    expect(f.sent.filter((s) => s.via === 'redis' && !redisIds.has(s.id))).toEqual([]);
    // Redis holds no copy twice and nothing unacknowledged; NATS copies beyond the acked ones can only be
    // stores whose ack was lost to the kill, published again on Redis (the consumers' dedup makes them harmless).
    expect(redisIds.size).toBe(inRedis.length);
    const ackedVia = new Map(f.sent.map((s) => [s.id, s.via]));
    expect(inRedis.every((m) => ackedVia.get(m.id) === 'redis')).toBe(true);
    const extraNats = inNats.filter((m) => ackedVia.get(m.id) !== 'nats');
    expect(extraNats.every((m) => ackedVia.get(m.id) === 'redis')).toBe(true);
    figures['ids stored on both routes (NATS stored, ack lost to the kill, republished on Redis)'] = String(extraNats.length);

    // Per-key order: NATS (acked there) then Redis, each in publish order, is exactly the publish order.
    const natsByKey = byKey(inNats.filter((m) => ackedVia.get(m.id) === 'nats'));
    const redisByKey = byKey(inRedis); // one key lives in one shard: its entries are in XADD order
    for (const [key, items] of byKey([...f.sent].sort((a, b) => a.index - b.index))) {
      const stored = [...(natsByKey.get(key) ?? []).map((m) => m.id), ...(redisByKey.get(key) ?? []).map((m) => m.id)];
      expect(stored).toEqual(items.map((s) => s.id));
    }
    // The Redis fields carry the wire format.
    const sample = inRedis[0]!;
    expect(sample.stream).toBe(failover.queues.streamKey(f.subject, sample.key));
    expect(sample.transaction).toMatch(new RegExp(`^${namespace}/tx-`));
    expect(JSON.parse(sample.data)).toMatchObject({ key: sample.key });
  });

  it('NATS back: stays on redis while Redis holds unconsumed entries, switches back once drained, later messages go to NATS', async () => {
    const { router, queues } = failover;
    // More traffic while on redis (NATS is healthy again but Redis is not drained): measures the Redis path.
    const redisBurst: Sent[] = [];
    const started = Date.now();
    await publishAll(router, f.subject, f.next, redisBurst, { perKey: 20 });
    figures['Redis publish rate (20 keys, one in flight per key)'] = `${Math.round(redisBurst.length / ((Date.now() - started) / 1000))} msg/s`;
    expect(redisBurst.every((s) => s.via === 'redis')).toBe(true);
    f.sent.push(...redisBurst);

    // The router has seen NATS healthy for recoverAfterMs and checked the drain: entries wait, so it stays.
    const onRedis = f.sent.filter((s) => s.via === 'redis').length;
    const check = await eventually('a drain check after recoverAfterMs of NATS health', async () => {
      const st = router.status();
      return st.natsHealthySince !== undefined && st.lastDrainCheck && st.lastDrainCheck.at - st.natsHealthySince >= RECOVER_AFTER_MS && st.lastDrainCheck.pending === onRedis
        ? st
        : undefined;
    }, 20_000);
    expect(check.route).toBe('redis');
    expect((await readConfigMap(f.cm)).route).toBe('redis');

    // The test's consumer drains Redis; the router switches back after that.
    const consumed = await drainRedis(f.prefix, f.subject);
    const drainedAt = Date.now();
    expect(consumed).toHaveLength(onRedis);
    for (const [key, items] of byKey(consumed)) {
      expect(items.map((c) => c.id)).toEqual(f.sent.filter((s) => s.key === key && s.via === 'redis').sort((a, b) => a.index - b.index).map((s) => s.id));
    }
    const back = await eventually('the switch ConfigMap to say nats', async () => {
      const d = await readConfigMap(f.cm);
      return d.route === 'nats' ? { d, at: Date.now() } : undefined;
    }, 20_000);
    figures['switch-back time (last XACK → ConfigMap says nats)'] = `${back.at - drainedAt} ms`;
    figures['NATS restart → ConfigMap says nats (includes the drain)'] = `${back.at - natsRestartedAt} ms`;
    expect(back.d).toMatchObject({ reason: 'NatsRecovered', changedBy: 'replica-f' });
    expect(back.at - drainedAt).toBeLessThan(PROBE_MS + 3000);
    // The fence stays for a while: a replica that has not seen the flip cannot add to Redis behind NATS.
    await expect(queues.publish(msgFor(f.subject, 'key-0', 10_000))).rejects.toMatchObject({ reason: QUEUES_CLOSED });
    await eventually('the router to follow', async () => (router.route === 'nats' ? true : undefined), 5000);

    const natsBurst: Sent[] = [];
    const t0 = Date.now();
    await publishAll(router, f.subject, f.next, natsBurst, { perKey: 20 });
    figures['NATS publish rate after switch-back'] = `${Math.round(natsBurst.length / ((Date.now() - t0) / 1000))} msg/s`;
    expect(natsBurst.every((s) => s.via === 'nats' && !s.ack.duplicate)).toBe(true);
    f.sent.push(...natsBurst);
    expect(await metricValue(registryF, 'kubetx_broker_flips_total', { from: 'redis', to: 'nats', reason: 'NatsRecovered' })).toBe(1);

    // The whole scenario, per key: NATS, then Redis, then NATS, each part in publish order, nothing lost.
    const ackedVia = new Map(f.sent.map((s) => [s.id, s.via]));
    const natsByKey = byKey((await readNats(f.subject)).filter((m) => ackedVia.get(m.id) === 'nats'));
    const redisByKey = byKey(await readRedis(f.prefix, f.subject));
    for (const [key, items] of byKey([...f.sent].sort((a, b) => a.index - b.index))) {
      expect(items.map((s) => s.via).join(' ')).toMatch(/^(nats ?)*(redis ?)*(nats ?)*$/);
      const nIds = (natsByKey.get(key) ?? []).map((m) => m.id);
      const before = items.findIndex((s) => s.via === 'redis');
      expect(before).toBeGreaterThanOrEqual(0);
      const stored = [...nIds.slice(0, before), ...(redisByKey.get(key) ?? []).map((m) => m.id), ...nIds.slice(before)];
      expect(stored).toEqual(items.map((s) => s.id));
    }
    router.stop();
  });

  it('Redis down while NATS is down: publish fails unavailable within the timeouts; once Redis is back the retry is stored once', async () => {
    const subject = 'orders.both';
    const { router, queues, client: rc } = await makeRouter('route-both', 'b', 'replica-b');
    expect((await router.publish(msgFor(subject, 'key-0', 0))).via).toBe('nats');
    await redis.kill();
    await nats.kill();

    const msg = msgFor(subject, 'key-0', 1);
    const attempts: Array<{ err: BrokerError; ms: number }> = [];
    while (attempts.length < THRESHOLD + 2) {
      const t = Date.now();
      const err = await router.publish(msg).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(BrokerError);
      attempts.push({ err: err as BrokerError, ms: Date.now() - t });
    }
    figures['publish while both are down'] = attempts.map((a) => `${a.err.via}/${a.err.reason} in ${a.ms} ms`).join(', ');
    for (const a of attempts) {
      expect(a.err.kind).toBe('unavailable');
      expect(a.ms).toBeLessThan(NATS_TIMEOUT_MS + 2 * REDIS_TIMEOUT_MS + 2000); // bounded, not a hang
    }
    // The THRESHOLD-th failure flipped the switch; from then on the message is tried on Redis, which is down too.
    expect(router.route).toBe('redis');
    expect(attempts.at(-1)!.err).toMatchObject({ via: 'redis', reason: 'RedisDown' });

    await redis.restart();
    await eventually('the router\'s Redis client to reconnect', async () => (rc.status === 'ready' ? true : undefined), 10_000);
    const ack = await router.publish(msg);
    expect(ack).toMatchObject({ via: 'redis', duplicate: false });
    const again = await router.publish(msg);
    expect(again).toMatchObject({ via: 'redis', duplicate: true, entryId: ack.via === 'redis' ? ack.entryId : '' });
    expect((await readRedis('b', subject)).filter((e) => e.id === msg.id)).toHaveLength(1);

    // An XADD that fails inside the dedup script (the stream key holds a string) leaves no dedup key behind.
    const m2 = msgFor(subject, 'key-1', 0);
    await tr.set(queues.streamKey(subject, m2.key), 'not a stream');
    await expect(router.publish(m2)).rejects.toMatchObject({ kind: 'rejected', via: 'redis', reason: 'RedisRejected' });
    expect(await tr.exists(redisDedupKey('b', m2.id))).toBe(0);
    await tr.del(queues.streamKey(subject, m2.key));
    expect(await router.publish(m2)).toMatchObject({ via: 'redis', duplicate: false });

    router.stop();
    await nats.restart();
    await eventually('JetStream to answer', () => jsm.streams.info(STREAM).then(() => true), 20_000);
  });

  it('two replicas share the switch: one flips, the other follows within pollMs; a manual flip is not undone by health checks', async () => {
    const subject = 'orders.shared';
    const cm = 'route-shared';
    let flippedAt = 0;
    const a = await makeRouter(cm, 's', 'replica-a', { onFlip: (_f, to) => to === 'redis' && (flippedAt ||= Date.now()) });
    const b = await makeRouter(cm, 's', 'replica-b');
    expect([a.router.route, b.router.route]).toEqual(['nats', 'nats']);

    await nats.kill();
    const msg = msgFor(subject, 'key-0', 0);
    await eventually('replica A to fail over', async () => {
      const ack = await a.router.publish(msg).catch(() => undefined);
      return ack?.via === 'redis' ? ack : undefined;
    }, 10_000);
    await eventually('replica B to follow', async () => (b.router.route === 'redis' ? true : undefined), POLL_MS + 2000);
    const followMs = Date.now() - flippedAt;
    figures['second replica follows a flip'] = `${followMs} ms (pollMs ${POLL_MS})`;
    expect(followMs).toBeLessThan(POLL_MS + 500);
    // B publishes on Redis without having seen a NATS failure itself.
    expect((await b.router.publish(msgFor(subject, 'key-0', 1))).via).toBe('redis');

    // NATS back, Redis drained: one of them switches back, both follow.
    await nats.restart();
    await drainRedis('s', subject);
    await eventually('both on nats again', async () => (a.router.route === 'nats' && b.router.route === 'nats' ? true : undefined), 20_000);
    expect((await readConfigMap(cm)).reason).toBe('NatsRecovered');

    // A human fails over by hand (kubectl edit): both follow, and healthy NATS + drained Redis do not undo it.
    const current = await core.readNamespacedConfigMap({ name: cm, namespace });
    current.data = { ...current.data, route: 'redis', manual: 'true', reason: 'Drill', changedBy: 'alice', since: new Date().toISOString() };
    await core.replaceNamespacedConfigMap({ name: cm, namespace, body: current });
    await eventually('both on redis', async () => (a.router.route === 'redis' && b.router.route === 'redis' ? true : undefined), POLL_MS + 2000);
    await eventually('both to have seen NATS healthy for well over recoverAfterMs', async () => {
      const ok = [a, b].every(({ router }) => {
        const st = router.status();
        return st.natsHealthySince !== undefined && st.lastProbe && st.lastProbe.at - st.natsHealthySince >= RECOVER_AFTER_MS + 3 * PROBE_MS;
      });
      return ok ? true : undefined;
    }, 20_000);
    expect(await readConfigMap(cm)).toMatchObject({ route: 'redis', manual: 'true', changedBy: 'alice' });
    expect(await a.queues.drained([GROUP])).toBe(true);
    // An automatic flip is refused while manual is set.
    expect(await a.routeSwitch.flip('nats', { reason: 'NatsRecovered' })).toMatchObject({ flipped: false, refused: 'Manual' });

    // Clearing the flag hands the route back to the health checks: back to nats.
    await b.routeSwitch.clearManual('DrillOver', 'alice');
    const back = await eventually('the health checks to switch back', async () => {
      const d = await readConfigMap(cm);
      return d.route === 'nats' ? d : undefined;
    }, 10_000);
    expect(back.reason).toBe('NatsRecovered');
    expect(back.manual).toBeUndefined();
    a.router.stop();
    b.router.stop();
  });
});

/**
 * Broker branches end to end (issue 21): the operator process with
 * --nats-url/--redis-url, a real nats-server (JetStream) and redis-server,
 * the real API server, and two consumers (the SDK's subscribe, each with its
 * own SQLite barrier and ledger) reading both paths.
 *
 * Every check reads the consumers' own ledgers (one row per handler run that
 * committed) besides the transactions' status: every committed message
 * applied exactly once per consumer, none of a rolled-back transaction, and
 * per-key order within each path and across the switch-back.
 *
 * Per-key order is driven the way a caller gets it: the next transaction of a
 * key is created once the previous one is Delivered (its publish was acked).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import * as k8s from '@kubernetes/client-node';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { jsonLogger } from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { subscribe, type BrokerMessage, type Subscription } from '../../sdk/typescript/src/broker.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

const STREAM = 'KUBETX_DTX';
const CONFIGMAP = 'kubetx-broker-route';
const CONSUMERS = ['inventory', 'credit'] as const;
type Consumer = (typeof CONSUMERS)[number];
/** How long the route may take to follow NATS going away or coming back (the flags below make it ~1–3 s). */
const FLIP_BOUND_MS = 20_000;
const logger = jsonLogger({ level: process.env.KUBETX_TEST_LOG === '1' ? 'debug' : 'silent', write: (l) => void process.stderr.write(l) });

let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let ns: string;
let nats: NatsServer;
let redis: RedisServer;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
let dir: string;
const ledgers = new Map<Consumer, Database.Database>();
const subs: Subscription[] = [];
const figures: Record<string, string | number> = {};

const operatorArgs = () => [
  '--nats-url', nats.url,
  '--redis-url', redis.url,
  '--nats-stream', STREAM,
  '--broker-failure-threshold', '2',
  '--broker-publish-timeout', '1s',
  '--broker-recover-after', '2s',
  '--broker-probe-interval', '250ms',
  '--leader-election-namespace', ns,
];

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(k8s.CoreV1Api);
  ns = await freshNamespace(kc, 'broker');
  txs = transactions(kc);
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  const nc = await connect({ servers: nats.url });
  await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: [`kubetx.${ns}.>`], storage: StorageType.File, duplicate_window: 120e9 });
  await nc.close();
  dir = mkdtempSync(join(tmpdir(), 'kubetx-broker-delivery-'));
  for (const c of CONSUMERS) {
    const db = new Database(join(dir, `${c}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, path TEXT NOT NULL)');
    ledgers.set(c, db);
    const sub = subscribe({
      nats: { servers: nats.url, stream: STREAM, durable: c, subject: `kubetx.${ns}.${c}` },
      redis: { url: redis.url, subject: `kubetx.${ns}.${c}`, group: c, consumer: `${c}-1`, claimIdleMs: 2_000 },
      barrier: new SqliteBarrier(db),
      handler: (m: BrokerMessage, tx: Database.Database) =>
        void tx.prepare('INSERT INTO applied (id, key, n, path) VALUES (?, ?, ?, ?)').run(m.id, m.key, (m.payload as { n: number }).n, m.path),
      logger,
    });
    subs.push(sub);
    await sub.ready;
  }
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: operatorArgs() });
  await operator.waitForLog((l) => l.msg === 'broker delivery started');
}, 120_000);

afterAll(async () => {
  // Copies the barrier answered without applying (a message stored on both routes, a redelivery): harmless, counted.
  subs.forEach((s, i) => {
    const { nats: n, redis: r } = s.counters;
    figures[`${CONSUMERS[i]}: applied nats/redis, duplicates skipped nats/redis`] = `${n.applied}/${r.applied}, ${n.duplicates}/${r.duplicates}`;
  });
  await operator?.kill('SIGKILL');
  await Promise.all(subs.map((s) => s.stop()));
  for (const db of ledgers.values()) db.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`[broker-delivery] figures:\n${Object.entries(figures).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
});

let seq = 0;
function message(key: string, n: number, decision: 'Commit' | 'Rollback' | '' = 'Commit', mode: 'Message' | 'Notify' = 'Message'): DistributedTransaction {
  const branches = CONSUMERS.map((c) => ({ name: c, broker: { subject: c, key } }));
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: `m-${key}-${n}-${seq++}`, namespace: ns, uid: '' },
    spec:
      mode === 'Message'
        ? { mode, payload: { n }, message: { source: { endpoint: { address: '127.0.0.1:9' } }, ...(decision ? { decision } : {}) }, branches }
        : { mode, payload: { n }, branches },
  } as DistributedTransaction;
}

async function create(tx: DistributedTransaction): Promise<DistributedTransaction> {
  return (await txs.create(tx)) as DistributedTransaction;
}

async function route(): Promise<{ route: string; reason: string; manual: string } | undefined> {
  const cm = await core.readNamespacedConfigMap({ namespace: ns, name: CONFIGMAP }).catch(() => undefined);
  return cm?.data as { route: string; reason: string; manual: string } | undefined;
}

interface Applied {
  id: string;
  key: string;
  n: number;
  path: string;
  seq: number;
}
const applied = (c: Consumer): Applied[] => ledgers.get(c)!.prepare('SELECT seq, id, key, n, path FROM applied ORDER BY seq').all() as Applied[];

/** Every consumer has applied every id of `delivered` exactly once, and none of `never`. */
async function expectAppliedOnce(delivered: DistributedTransaction[], never: DistributedTransaction[] = []): Promise<void> {
  const want = (tx: DistributedTransaction, c: Consumer) => `${tx.metadata.uid}/${c}`;
  for (const c of CONSUMERS) {
    await eventually(`${c} to apply ${delivered.length} messages`, async () => {
      const ids = new Set(applied(c).map((a) => a.id));
      return delivered.every((tx) => ids.has(want(tx, c))) ? true : undefined;
    }, 60_000);
    const counts = new Map<string, number>();
    for (const a of applied(c)) counts.set(a.id, (counts.get(a.id) ?? 0) + 1);
    for (const tx of delivered) expect(counts.get(want(tx, c)), `${c}: ${want(tx, c)}`).toBe(1);
    for (const tx of never) expect(counts.get(want(tx, c)), `${c}: ${want(tx, c)} (rolled back)`).toBeUndefined();
  }
}

/** Within each path, each key's messages were applied in the order they were published (n ascending). */
function expectPerPathOrder(c: Consumer, keys: string[]): void {
  for (const key of keys) {
    for (const path of ['nats', 'redis']) {
      const ns_ = applied(c).filter((a) => a.key === key && a.path === path).map((a) => a.n);
      expect(ns_, `${c} ${key} via ${path}`).toEqual([...ns_].sort((a, b) => a - b));
    }
  }
}

/**
 * Per key, transactions 0..count-1 one after another (each created once the
 * previous is Delivered); `during(i)` runs before transaction i is created.
 */
async function chain(key: string, count: number, during?: (i: number) => Promise<void>): Promise<DistributedTransaction[]> {
  const out: DistributedTransaction[] = [];
  for (let i = 0; i < count; i++) {
    await during?.(i);
    const tx = await create(message(key, i));
    out.push(await txs.untilPhase(ns, tx.metadata.name, ['Delivered'], 120_000));
  }
  return out;
}

describe('broker branches: NATS JetStream with failover to sharded Redis queues', () => {
  it('healthy NATS: every committed message arrives once per consumer, with the JetStream ack in status; rolled back ones never', async () => {
    const committed = await Promise.all(Array.from({ length: 20 }, (_, i) => create(message(`h${i % 5}`, i))));
    const rolledBack = await Promise.all(Array.from({ length: 5 }, (_, i) => create(message(`r${i}`, i, 'Rollback'))));
    const notify = await create(message('notify', 0, '', 'Notify'));
    const done = await Promise.all([...committed, notify].map((t) => txs.untilPhase(ns, t.metadata.name, ['Delivered'], 60_000)));
    for (const t of rolledBack) expect((await txs.untilPhase(ns, t.metadata.name, ['RolledBack'], 60_000)).status?.phase).toBe('RolledBack');
    for (const t of done) {
      for (const b of t.status!.branches!) {
        expect(b.delivery, `${t.metadata.name}/${b.name}`).toMatchObject({ route: 'nats', stream: STREAM });
        expect(Number(b.delivery!.sequence)).toBeGreaterThan(0);
      }
    }
    await expectAppliedOnce(done, rolledBack);
    expect((await route())?.route).toBe('nats');
    // Nothing of a rolled-back transaction reached either broker.
    expect(counterValue(await operator.metrics(), 'kubetx_broker_publish_total', { route: 'nats', result: 'ok' })).toBe(done.length * CONSUMERS.length);
  });

  it('NATS killed mid-stream: the route flips to Redis within the bound and nothing is lost; NATS back: switch-back after the drain, order kept', async () => {
    const keys = ['k0', 'k1', 'k2', 'k3'];
    let killedAt = 0;
    let restartedAt = 0;
    let flippedAt = 0;
    let backAt = 0;
    // Key k0 drives the outage: kill NATS before its 4th transaction, bring it back before its 12th.
    const driver = async (i: number) => {
      if (i === 4) {
        await nats.kill();
        killedAt = Date.now();
        await eventually('route redis', async () => ((await route())?.route === 'redis' ? true : undefined), FLIP_BOUND_MS);
        flippedAt = Date.now();
      }
      if (i === 12) {
        await nats.restart();
        restartedAt = Date.now();
        await eventually('route back to nats', async () => ((await route())?.route === 'nats' ? true : undefined), 60_000);
        backAt = Date.now();
      }
    };
    const chains = await Promise.all(keys.map((k, j) => chain(k, 16, j === 0 ? driver : undefined)));
    const all = chains.flat();
    figures['failover: NATS killed → route redis (ms)'] = flippedAt - killedAt;
    figures['switch-back: NATS restarted → route nats (ms)'] = backAt - restartedAt;
    expect(flippedAt - killedAt).toBeLessThan(FLIP_BOUND_MS);

    const routes = all.flatMap((t) => t.status!.branches!.map((b) => b.delivery?.route));
    expect(routes.filter((r) => r === 'redis').length, 'messages sent to Redis during the outage').toBeGreaterThan(0);
    expect(routes.every((r) => r === 'nats' || r === 'redis')).toBe(true);
    // The last transactions of k0 were created after the switch-back: NATS again.
    expect(chains[0]!.slice(12).every((t) => t.status!.branches!.every((b) => b.delivery?.route === 'nats'))).toBe(true);
    await expectAppliedOnce(all);
    for (const c of CONSUMERS) {
      expectPerPathOrder(c, keys);
      // Across the switch-back: a key's NATS messages stored after it were applied after all of its Redis ones.
      for (const key of keys) {
        const rows = applied(c).filter((a) => a.key === key);
        const lastRedis = Math.max(-1, ...rows.filter((a) => a.path === 'redis').map((a) => a.n));
        const natsAfter = rows.filter((a) => a.path === 'nats' && a.n > lastRedis);
        const redisRows = rows.filter((a) => a.path === 'redis');
        for (const a of natsAfter) expect(redisRows.every((r) => r.seq < a.seq), `${c} ${key}: nats n=${a.n} applied before a Redis one`).toBe(true);
      }
    }
    const redisCount = routes.filter((r) => r === 'redis').length;
    figures['messages via Redis during the outage'] = redisCount;
    // The flips were recorded as Events on the route ConfigMap.
    const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    const reasons = events.items.filter((e) => e.regarding?.name === CONFIGMAP).map((e) => e.reason);
    expect(reasons).toContain('BrokerFailover');
    expect(reasons).toContain('BrokerRecovered');
  });

  it('Redis down while NATS is down: the transaction stays committed-but-undelivered, retrying visibly (through an operator SIGKILL); delivered once both return', async () => {
    await Promise.all([nats.kill(), redis.kill()]);
    const tx = await create(message('both-down', 0));
    const failing = await eventually('Deliver failing with BrokerUnavailable', async () => {
      const t = await txs.get(ns, tx.metadata.name);
      const b = t.status?.branches?.[0];
      return t.status?.phase === 'Delivering' && b && b.attempts >= 2 && b.lastError?.startsWith('BrokerUnavailable') ? t : undefined;
    }, 60_000);
    expect(failing.status?.decision).toBe('Deliver');
    expect(failing.status?.branches?.every((b) => b.state === 'Delivering' && b.delivery === undefined)).toBe(true);
    // The operator dies while it retries: the next one carries on from the stored attempts.
    await operator.kill('SIGKILL');
    operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: operatorArgs() });
    const attemptsBefore = failing.status!.branches![0]!.attempts;
    await eventually('the new operator retrying', async () => {
      const t = await txs.get(ns, tx.metadata.name);
      const b = t.status?.branches?.[0];
      return t.status?.phase === 'Delivering' && b && b.attempts > attemptsBefore && b.lastError?.startsWith('BrokerUnavailable') ? t : undefined;
    }, 60_000);
    await Promise.all([redis.restart(), nats.restart()]);
    const done = await txs.untilPhase(ns, tx.metadata.name, ['Delivered'], 120_000);
    await expectAppliedOnce([done]);
    await eventually('route nats again', async () => ((await route())?.route === 'nats' ? true : undefined), 60_000);
  });

  it('operator SIGKILLed during the outage and again after the switch-back: every message applied once', async () => {
    const keys = ['s0', 's1'];
    const driver = async (i: number) => {
      if (i === 2) {
        await nats.kill();
        await eventually('route redis', async () => ((await route())?.route === 'redis' ? true : undefined), FLIP_BOUND_MS);
      }
      if (i === 4) {
        await operator.kill('SIGKILL');
        operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: operatorArgs() });
      }
      if (i === 6) {
        await nats.restart();
        await eventually('route back to nats', async () => ((await route())?.route === 'nats' ? true : undefined), 60_000);
        await operator.kill('SIGKILL');
        operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: operatorArgs() });
      }
    };
    // Transactions created while the operator is down are picked up by the next one.
    const chains = await Promise.all(keys.map((k, j) => chain(k, 9, j === 0 ? driver : undefined)));
    const all = chains.flat();
    await expectAppliedOnce(all);
    for (const c of CONSUMERS) expectPerPathOrder(c, keys);
  });

  it('a broker the subject is not captured by: BrokerRejected, Stalled at once, not failed over', async () => {
    const tx = message('rejected', 0);
    tx.spec.branches = [{ name: 'inventory', broker: { subject: 'inventory', key: 'rejected', stream: 'NO_SUCH_STREAM' } }];
    await create(tx);
    const t = await eventually('Stalled BrokerRejected', async () => {
      const got = await txs.get(ns, tx.metadata.name);
      const stalled = got.status?.conditions?.find((c) => c.type === 'Stalled');
      return stalled?.status === 'True' && stalled.reason === 'BrokerRejected' ? got : undefined;
    }, 60_000);
    expect(t.status?.branches?.[0]?.lastError).toMatch(/^BrokerRejected: /);
    expect((await route())?.route).toBe('nats');
  });
});

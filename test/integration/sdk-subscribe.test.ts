/**
 * The SDK's broker subscriber (`@kubetx/participant/broker`, issue 21 item 3)
 * against a real nats-server (JetStream) and a real redis-server
 * (test/support), with a SQLite barrier and ledger in a temporary file. The
 * test publishes in kubetx's wire format itself (headers Nats-Msg-Id,
 * Kubetx-Key, Kubetx-Transaction; Redis streams <prefix>:<subject>:<FNV-1a-64(key) mod shards>).
 *
 * Every check reads the consumer's own ledger (one row per handler run that
 * committed) and the brokers' pending counts; state is polled with deadlines.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLogger, type Barrier } from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { subscribe, type BrokerMessage, type SubscribeOptions, type Subscription } from '../../sdk/typescript/src/broker.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { repoRoot } from '../support/testenv-paths.js';

const STREAM = 'KUBETX_SUB';
const SHARDS = 128;
const enc = new TextEncoder();
const logger = jsonLogger({ level: process.env.KUBETX_TEST_LOG === '1' ? 'debug' : 'silent', write: (l) => void process.stderr.write(l) });

interface Msg {
  id: string;
  key: string;
  n: number;
}

/** FNV-1a 64 of the key's UTF-8 bytes, mod shards: the publisher's shard. */
function shardOf(key: string, shards = SHARDS): number {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(key, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % BigInt(shards));
}

let nats: NatsServer;
let redis: RedisServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let r: Redis;
let dir: string;
const subs: Subscription[] = [];

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['t.>'], storage: StorageType.File, duplicate_window: 120e9 });
  js = jetstream(nc);
  r = new Redis(redis.url);
  dir = mkdtempSync(join(tmpdir(), 'kubetx-sdk-subscribe-'));
}, 60_000);

afterAll(async () => {
  await Promise.all(subs.map((s) => s.stop()));
  await nc?.close();
  r?.disconnect();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ledger(name: string): Database.Database {
  const db = new Database(join(dir, `${name}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, path TEXT NOT NULL)');
  return db;
}

const record = (m: BrokerMessage, db: Database.Database) =>
  void db.prepare('INSERT INTO applied (id, key, n, path) VALUES (?, ?, ?, ?)').run(m.id, m.key, (m.payload as { n: number }).n, m.path);

/** How many times each id was applied (a missing id: 0). */
function appliedCounts(db: Database.Database): Map<string, number> {
  const rows = db.prepare('SELECT id, COUNT(*) AS c FROM applied GROUP BY id').all() as Array<{ id: string; c: number }>;
  return new Map(rows.map((x) => [x.id, x.c]));
}

const messages = (tag: string, count: number, keys = count): Msg[] =>
  Array.from({ length: count }, (_, i) => ({ id: `uid-${tag}-${i}/deliver`, key: `${tag}-key-${i % keys}`, n: Math.floor(i / keys) }));

async function publishNats(subject: string, m: Msg): Promise<void> {
  const h = headers();
  h.set('Kubetx-Key', m.key);
  h.set('Kubetx-Transaction', `shop/order-${m.id.split('/')[0]}`);
  const ack = await js.publish(subject, enc.encode(JSON.stringify({ n: m.n, key: m.key })), { msgID: m.id, headers: h });
  expect(ack.duplicate).toBe(false);
}

async function publishRedis(subject: string, m: Msg): Promise<void> {
  await r.xadd(`kubetx:${subject}:${shardOf(m.key)}`, '*', 'id', m.id, 'key', m.key, 'transaction', `shop/order-${m.id.split('/')[0]}`, 'data', JSON.stringify({ n: m.n, key: m.key }));
}

async function natsPending(durable: string): Promise<{ pending: number; ackPending: number }> {
  const ci = await jsm.consumers.info(STREAM, durable);
  return { pending: ci.num_pending, ackPending: ci.num_ack_pending };
}

/** Entries delivered to the group and not acked, over all shards. */
async function redisPending(subject: string, group: string): Promise<number> {
  const p = r.pipeline();
  for (let i = 0; i < SHARDS; i++) p.xpending(`kubetx:${subject}:${i}`, group);
  let total = 0;
  for (const [err, res] of (await p.exec()) ?? []) {
    if (err) throw err;
    total += Number((res as [number])[0]);
  }
  return total;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function start<Tx>(options: SubscribeOptions<Tx>): Subscription {
  const sub = subscribe({ logger, ...options });
  subs.push(sub);
  return sub;
}

const natsOpts = (name: string, extra: object = {}) => ({ servers: nats.url, stream: STREAM, durable: name, subject: `t.${name}`, ...extra });
const redisOpts = (name: string, extra: object = {}) => ({ url: redis.url, subject: `t.${name}`, group: name, consumer: 'c1', ...extra });

describe('subscribe: JetStream and the sharded Redis fallback together', () => {
  it('(a) 100 messages on JetStream and 100 on Redis shards: each applied exactly once and acked', async () => {
    const db = ledger('a');
    const onNats = messages('a-nats', 100);
    const onRedis = messages('a-redis', 100);
    // Half before the consumer first starts (its durable and groups do not exist yet), half after.
    for (const m of onRedis.slice(0, 50)) await publishRedis('t.a', m);
    const sub = start({ nats: natsOpts('a'), redis: redisOpts('a'), barrier: new SqliteBarrier(db), handler: record });
    await sub.ready;
    for (const m of onNats) await publishNats('t.a', m);
    for (const m of onRedis.slice(50)) await publishRedis('t.a', m);

    await waitFor('200 acks', () => sub.counters.nats.acked === 100 && sub.counters.redis.acked === 100);
    const counts = appliedCounts(db);
    expect(counts.size).toBe(200);
    for (const m of [...onNats, ...onRedis]) expect(counts.get(m.id), m.id).toBe(1);
    expect(sub.counters.nats).toMatchObject({ received: 100, applied: 100, duplicates: 0, acked: 100, failed: 0, rejected: 0 });
    expect(sub.counters.redis).toMatchObject({ received: 100, applied: 100, duplicates: 0, acked: 100, failed: 0, rejected: 0 });
    // The Redis messages were spread over many shard streams, and they are all read.
    expect(new Set(onRedis.map((m) => shardOf(m.key))).size).toBeGreaterThan(50);
    expect(await natsPending('a')).toEqual({ pending: 0, ackPending: 0 });
    expect(await redisPending('t.a', 'a')).toBe(0);
    await sub.stop();
    db.close();
  });

  it('(b) the same id on both paths (JetStream, then Redis after a failover): applied once, acked on both', async () => {
    const db = ledger('b');
    const ids = messages('b', 10);
    for (const m of ids) await publishNats('t.b', m);
    for (const m of ids) await publishRedis('t.b', m); // the republish after a switch to the fallback
    const sub = start({ nats: natsOpts('b'), redis: redisOpts('b'), barrier: new SqliteBarrier(db), handler: record });
    await waitFor('20 acks', () => sub.counters.nats.acked + sub.counters.redis.acked === 20);
    const { nats: n, redis: rd } = sub.counters;
    expect(n.applied + rd.applied).toBe(10);
    expect(n.duplicates + rd.duplicates).toBe(10);
    const counts = appliedCounts(db);
    for (const m of ids) expect(counts.get(m.id), m.id).toBe(1);
    expect(await natsPending('b')).toEqual({ pending: 0, ackPending: 0 });
    expect(await redisPending('t.b', 'b')).toBe(0);
    await sub.stop();
    db.close();
  });

  // The consumer process is SIGKILLed by itself in afterCommit: its local
  // transaction committed, its ack was never sent.
  const CHILD = `
import { createRequire } from 'node:module';
import { subscribe } from ${JSON.stringify(join(repoRoot, 'sdk/typescript/src/broker.ts'))};
import { SqliteBarrier } from ${JSON.stringify(join(repoRoot, 'sdk/typescript/src/sqlite.ts'))};
import { jsonLogger } from ${JSON.stringify(join(repoRoot, 'sdk/typescript/src/index.ts'))};
const Database = createRequire(${JSON.stringify(join(repoRoot, 'package.json'))})('better-sqlite3');
const cfg = JSON.parse(process.argv[2]);
const db = new Database(cfg.db);
db.pragma('busy_timeout = 5000');
subscribe({
  ...cfg.paths,
  barrier: new SqliteBarrier(db),
  handler: (m, tx) => void tx.prepare('INSERT INTO applied (id, key, n, path) VALUES (?, ?, ?, ?)').run(m.id, m.key, m.payload.n, m.path),
  afterCommit: () => process.kill(process.pid, 'SIGKILL'),
  logger: jsonLogger({ level: 'warn', write: (l) => void process.stderr.write(l) }),
});
`;

  async function crashAfterCommit(db: string, paths: object): Promise<void> {
    const script = join(dir, 'crashing-consumer.ts');
    writeFileSync(script, CHILD);
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify({ db, paths })], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('exit', (code, sig) => res([code, sig])));
    clearTimeout(timer);
    expect(signal, stderr).toBe('SIGKILL');
  }

  it('(c) a crash between the local commit and the ack: redelivered, not applied again, acked (both paths)', async () => {
    const db = ledger('c');
    const file = join(dir, 'c.db');
    const [viaNats, viaRedis] = messages('c', 2);
    await publishNats('t.c', viaNats!);
    await publishRedis('t.c', viaRedis!);

    // One crashing consumer per path, so each crash is right after that path's commit.
    await crashAfterCommit(file, { nats: natsOpts('c', { ackWaitMs: 1_000 }) });
    await crashAfterCommit(file, { redis: redisOpts('c', { consumer: 'crashed' }) });
    expect(Object.fromEntries(appliedCounts(db))).toEqual({ [viaNats!.id]: 1, [viaRedis!.id]: 1 });
    expect((await natsPending('c')).ackPending).toBe(1);
    expect(await redisPending('t.c', 'c')).toBe(1);

    // A new consumer (on Redis under another name: it claims the dead one's entry).
    const calls: string[] = [];
    const sub = start({
      nats: natsOpts('c'),
      redis: redisOpts('c', { consumer: 'survivor', claimIdleMs: 300 }),
      barrier: new SqliteBarrier(db),
      handler: (m, tx: Database.Database) => {
        calls.push(m.id);
        record(m, tx);
      },
    });
    await waitFor('both redelivered and acked', () => sub.counters.nats.acked === 1 && sub.counters.redis.acked === 1);
    expect(calls).toEqual([]);
    expect(sub.counters.nats).toMatchObject({ received: 1, applied: 0, duplicates: 1, acked: 1 });
    expect(sub.counters.redis).toMatchObject({ received: 1, applied: 0, duplicates: 1, acked: 1 });
    expect(Object.fromEntries(appliedCounts(db))).toEqual({ [viaNats!.id]: 1, [viaRedis!.id]: 1 });
    expect(await natsPending('c')).toEqual({ pending: 0, ackPending: 0 });
    expect(await redisPending('t.c', 'c')).toBe(0);
    await sub.stop();
    db.close();
  }, 60_000);

  it('(d) a handler error: not acked, redelivered, applied once when it succeeds', async () => {
    const db = ledger('d');
    const [bad1, bad2, ok1, ok2] = messages('d', 4);
    const badIds = new Set([bad1!.id, bad2!.id]);
    let failing = true;
    const sub = start({
      nats: natsOpts('d', { nakDelayMs: 100 }),
      redis: redisOpts('d', { claimIdleMs: 200 }),
      barrier: new SqliteBarrier(db),
      handler: (m, tx: Database.Database) => {
        record(m, tx); // rolled back with the transaction when the handler throws below
        if (failing && badIds.has(m.id)) throw new Error('downstream unavailable');
      },
    });
    await sub.ready;
    await publishNats('t.d', bad1!);
    await publishRedis('t.d', bad2!);
    await publishNats('t.d', ok1!);
    await publishRedis('t.d', ok2!);

    // Each failing message has come back at least twice; the others went through.
    await waitFor('redeliveries', () => sub.counters.nats.failed >= 3 && sub.counters.redis.failed >= 3 && sub.counters.nats.acked === 1 && sub.counters.redis.acked === 1);
    expect(Object.fromEntries(appliedCounts(db))).toEqual({ [ok1!.id]: 1, [ok2!.id]: 1 });
    expect(sub.counters.nats.received).toBeGreaterThanOrEqual(4);
    expect(sub.counters.redis.received).toBeGreaterThanOrEqual(4);
    expect((await natsPending('d')).ackPending).toBe(1);
    expect(await redisPending('t.d', 'd')).toBe(1);

    failing = false;
    await waitFor('the failed ones acked', () => sub.counters.nats.acked === 2 && sub.counters.redis.acked === 2);
    expect(Object.fromEntries(appliedCounts(db))).toEqual({ [bad1!.id]: 1, [bad2!.id]: 1, [ok1!.id]: 1, [ok2!.id]: 1 });
    expect(sub.counters.nats).toMatchObject({ applied: 2, duplicates: 0, acked: 2 });
    expect(sub.counters.redis).toMatchObject({ applied: 2, duplicates: 0, acked: 2 });
    expect(await natsPending('d')).toEqual({ pending: 0, ackPending: 0 });
    expect(await redisPending('t.d', 'd')).toBe(0);
    await sub.stop();
    db.close();
  });

  it('(e) per-key order: 20 keys × 10 messages on each path, processed concurrently but never two of a key at once', async () => {
    const db = ledger('e');
    const onNats = messages('e-nats', 200, 20); // interleaved: key 0..19 with n = 0, then n = 1, …
    const onRedis = messages('e-redis', 200, 20);
    for (const m of onNats) await publishNats('t.e', m);
    for (const m of onRedis) await publishRedis('t.e', m);

    // A barrier with a random asynchronous delay before each transaction (as a
    // server database has), so that messages overlap and could overtake each
    // other; it records how many run at once, overall and per key.
    const keyOf = new Map([...onNats, ...onRedis].map((m) => [m.id, m.key]));
    const inner = new SqliteBarrier(db);
    let active = 0;
    let maxActive = 0;
    const activeByKey = new Map<string, number>();
    let maxPerKey = 0;
    const jittery: Barrier<Database.Database> = {
      async run(key, method, handler) {
        const k = keyOf.get(`${key.uid}/${key.branch}`)!;
        active++;
        activeByKey.set(k, (activeByKey.get(k) ?? 0) + 1);
        maxActive = Math.max(maxActive, active);
        maxPerKey = Math.max(maxPerKey, activeByKey.get(k)!);
        try {
          await new Promise((res) => setTimeout(res, Math.random() * 4));
          return await inner.run(key, method, handler);
        } finally {
          active--;
          activeByKey.set(k, activeByKey.get(k)! - 1);
        }
      },
    };
    const sub = start({ nats: natsOpts('e'), redis: redisOpts('e'), barrier: jittery, handler: record, concurrency: 8 });
    await waitFor('400 acks', () => sub.counters.nats.acked === 200 && sub.counters.redis.acked === 200, 40_000);
    expect(maxPerKey).toBe(1);
    expect(maxActive).toBeGreaterThan(1);
    for (const tag of ['e-nats', 'e-redis']) {
      for (let k = 0; k < 20; k++) {
        const order = (db.prepare('SELECT n FROM applied WHERE key = ? ORDER BY seq').all(`${tag}-key-${k}`) as Array<{ n: number }>).map((x) => x.n);
        expect(order, `${tag}-key-${k}`).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      }
    }
    expect(appliedCounts(db).size).toBe(400);
    await sub.stop();
    db.close();
  }, 60_000);

  it('(f) a slow ack does not hold its key: the next message of the key is applied while the first one\'s ack waits', async () => {
    // A confirmed JetStream ack can take the whole request timeout when NATS goes away; the effect is committed already.
    const db = ledger('f');
    const [first, second] = messages('f', 2, 1); // one key
    let releaseFirstAck!: () => void;
    const firstAckHeld = new Promise<void>((r) => (releaseFirstAck = r));
    const sub = start({
      nats: natsOpts('f'),
      barrier: new SqliteBarrier(db),
      handler: record,
      afterCommit: (m) => (m.id === first!.id ? firstAckHeld : undefined),
    });
    await sub.ready;
    await publishNats('t.f', first!);
    await publishNats('t.f', second!);
    await waitFor('the second message applied while the first is not acked', () => appliedCounts(db).get(second!.id) === 1);
    // Its own ack goes out after its commit: wait for it (the first one's is still held).
    await waitFor('the second message acked', () => sub.counters.nats.acked === 1);
    releaseFirstAck();
    await waitFor('both acked', () => sub.counters.nats.acked === 2);
    expect((db.prepare('SELECT id FROM applied ORDER BY seq').all() as Array<{ id: string }>).map((r) => r.id)).toEqual([first!.id, second!.id]);
    await sub.stop();
    db.close();
  });
});

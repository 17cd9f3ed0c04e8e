/**
 * The broker figure's consumer process (started by bench/lib/broker-consumer.ts):
 * the TypeScript SDK's `subscribe` on both paths (JetStream durable + the Redis
 * shards' consumer group), a SqliteBarrier and the ledger in one SQLite file
 * (WAL, synchronous=NORMAL: durable against a process crash, not against a power
 * cut). The handler writes one ledger row per message it applies, inside the
 * barrier's transaction: id, the sender's tag, key, per-key sequence, path, the
 * publish start time from the payload and the time it ran (both ms since the
 * epoch with sub-ms precision, from performance.timeOrigin: one clock for both
 * processes on one machine).
 *
 * IPC: sends {ready} once both paths are set up; answers "counters" with the
 * subscription's counters; "stop" stops the subscription (in-flight messages
 * finish), answers the final counters and exits. Exits if the parent goes away.
 */
import Database from 'better-sqlite3';
import { subscribe } from '../../sdk/typescript/src/broker.js';
import { jsonLogger } from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { appendFileSync } from 'node:fs';
import type { ConsumerConfig, ConsumerReply, LedgerPayload } from './broker-consumer.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as ConsumerConfig;
const send = (m: ConsumerReply) => process.send!(m);
const now = () => performance.timeOrigin + performance.now();

const db = new Database(cfg.db);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS applied (id TEXT NOT NULL, tag TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, path TEXT NOT NULL, sent REAL NOT NULL, at REAL NOT NULL)');
db.exec('CREATE INDEX IF NOT EXISTS applied_tag ON applied (tag, at)');
const insert = db.prepare('INSERT INTO applied (id, tag, key, n, path, sent, at) VALUES (?, ?, ?, ?, ?, ?, ?)');

const sub = subscribe({
  nats: { servers: cfg.natsUrl, stream: cfg.stream, durable: cfg.name, subject: cfg.subject },
  redis: { url: cfg.redisUrl, subject: cfg.subject, group: cfg.name, consumer: 'c1', shards: cfg.shards },
  barrier: new SqliteBarrier(db),
  handler: (m) => {
    const p = m.payload as LedgerPayload;
    insert.run(m.id, p.tag, m.key, p.n, m.path, p.sent, now());
  },
  // Warnings (JetStream unreachable while NATS is killed, retries) go to a file the figure counts.
  logger: jsonLogger({ level: 'warn', write: (line) => appendFileSync(cfg.log, line) }),
});

sub.ready.then(
  () => send({ ready: true }),
  (err: unknown) => {
    process.stderr.write(`bench consumer: ${String(err)}\n`);
    process.exit(1);
  },
);

process.on('message', (msg: unknown) => {
  if (msg === 'counters') send({ counters: sub.counters });
  else if (msg === 'stop') {
    void sub.stop().then(() => {
      send({ counters: sub.counters });
      db.close();
      process.disconnect();
    });
  }
});
process.on('disconnect', () => process.exit(0));

/**
 * The broker figure's consumer, as a process of its own (a consuming service
 * is not the operator's process; and better-sqlite3 commits synchronously, so
 * in the benchmark's process it would stall the publishers' event loop).
 * bench/lib/broker-consumer-main.ts runs in it; this side starts it, asks it
 * for its counters over IPC and reads its ledger (the SQLite file, read-only,
 * WAL: reads do not block its writes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SubscriptionCounters } from '../../sdk/typescript/src/broker.js';
import { repoRoot } from '../../test/support/testenv-paths.js';

export interface ConsumerConfig {
  /** The SQLite file: barrier table and ledger. */
  db: string;
  /** Warnings of the subscription, JSON lines. */
  log: string;
  natsUrl: string;
  redisUrl: string;
  stream: string;
  subject: string;
  /** The JetStream durable and the Redis consumer group. */
  name: string;
  shards: number;
}

/** What the publisher puts in each message's JSON payload. */
export interface LedgerPayload {
  tag: string;
  /** Per-key sequence number. */
  n: number;
  /** When the publish started: performance.timeOrigin + performance.now(). */
  sent: number;
}

export type ConsumerReply = { ready: true } | { counters: SubscriptionCounters };

export interface LedgerRow {
  id: string;
  key: string;
  n: number;
  path: 'nats' | 'redis';
  sent: number;
  at: number;
}

export class BenchConsumer {
  private readonly ledger: Database.Database;
  private readonly countStmt: Database.Statement<[string], { rows: number; ids: number; last: number | null }>;
  private readonly rowsStmt: Database.Statement<[string], LedgerRow>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly cfg: ConsumerConfig,
  ) {
    this.ledger = new Database(cfg.db, { readonly: true, fileMustExist: true });
    this.countStmt = this.ledger.prepare('SELECT COUNT(*) AS rows, COUNT(DISTINCT id) AS ids, MAX(at) AS last FROM applied WHERE tag = ?');
    this.rowsStmt = this.ledger.prepare('SELECT id, key, n, path, sent, at FROM applied WHERE tag = ? ORDER BY at');
  }

  /** Starts the process and waits until both of its paths are set up. */
  static async start(cfg: ConsumerConfig): Promise<BenchConsumer> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench/lib/broker-consumer-main.ts'), JSON.stringify(cfg)], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the bench consumer was not ready within 60 s')), 60_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the bench consumer exited (${code ?? signal}) before it was ready`));
      });
    });
    return new BenchConsumer(child, cfg);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Ledger rows of `tag`, distinct ids among them, and the last one's time. */
  count(tag: string): { rows: number; ids: number; last: number } {
    const r = this.countStmt.get(tag)!;
    return { rows: r.rows, ids: r.ids, last: r.last ?? NaN };
  }

  /** Every ledger row of `tag`, in the order they were applied. */
  rows(tag: string): LedgerRow[] {
    return this.rowsStmt.all(tag);
  }

  counters(): Promise<SubscriptionCounters> {
    return this.ask('counters');
  }

  /** Lines the subscription logged at warn or above. */
  warnings(): number {
    return existsSync(this.cfg.log) ? readFileSync(this.cfg.log, 'utf8').split('\n').filter(Boolean).length : 0;
  }

  /** Stops the subscription (in-flight messages finish) and the process; the final counters. */
  async stop(): Promise<SubscriptionCounters> {
    const exited = new Promise<void>((r) => (this.child.exitCode !== null ? r() : this.child.once('exit', () => r())));
    const counters = await this.ask('stop');
    await exited;
    this.ledger.close();
    return counters;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    if (this.ledger.open) this.ledger.close();
  }

  private ask(what: 'counters' | 'stop'): Promise<SubscriptionCounters> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the bench consumer did not answer "${what}" within 30 s`)), 30_000);
      const on = (m: ConsumerReply) => {
        if (!('counters' in m)) return;
        clearTimeout(timer);
        this.child.off('message', on);
        resolve(m.counters);
      };
      this.child.on('message', on);
      this.child.send(what);
    });
  }
}

/**
 * The barrier on SQLite (better-sqlite3).
 *
 * better-sqlite3 transactions are synchronous, so handlers run by this barrier
 * MUST be synchronous: they receive the `Database` and do all their reads and
 * writes on it before returning. The barrier row and those writes commit in one
 * IMMEDIATE transaction (which also serializes concurrent calls, even from other
 * processes using the same file). A handler that returns a Promise is rejected
 * and rolled back; anything it started asynchronously would run outside the
 * transaction, so do asynchronous work (remote calls, sleeps) before the barrier,
 * e.g. in a `serveParticipant` middleware.
 *
 * Table (created if missing):
 *   kubetx_barrier(uid, branch, method, origin 'call'|'blocker', created_at ms,
 *                  message, data BLOB, PRIMARY KEY (uid, branch, method))
 */
import type Database from 'better-sqlite3';
import {
  applyBarrierRules,
  DEFAULT_BARRIER_RETENTION_MS,
  DEFAULT_BARRIER_TABLE,
  type Barrier,
  type BarrierKey,
  type BarrierMethod,
  type BarrierResponse,
  type BarrierResult,
  type BarrierRow,
} from './barrier.js';

export { DEFAULT_BARRIER_TABLE, DEFAULT_BARRIER_RETENTION_MS } from './barrier.js';

export interface SqliteBarrierOptions {
  /** @default "kubetx_barrier" */
  table?: string;
  /** Clock for created_at, in ms (tests). @default Date.now */
  now?: () => number;
}

interface Row {
  origin: 'call' | 'blocker';
  message: string | null;
  data: Buffer | null;
}

export class SqliteBarrier implements Barrier<Database.Database> {
  readonly table: string;
  private readonly now: () => number;
  private readonly getStmt: Database.Statement<[string, string, string], Row>;
  private readonly insertStmt: Database.Statement<[string, string, string, string, number, string, Buffer]>;

  constructor(
    readonly db: Database.Database,
    options: SqliteBarrierOptions = {},
  ) {
    this.table = options.table ?? DEFAULT_BARRIER_TABLE;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(this.table)) throw new Error(`invalid barrier table name ${JSON.stringify(this.table)}`);
    this.now = options.now ?? Date.now;
    db.exec(`CREATE TABLE IF NOT EXISTS ${this.table} (
      uid TEXT NOT NULL,
      branch TEXT NOT NULL,
      method TEXT NOT NULL,
      origin TEXT NOT NULL CHECK (origin IN ('call', 'blocker')),
      created_at INTEGER NOT NULL,
      message TEXT NOT NULL DEFAULT '',
      data BLOB,
      PRIMARY KEY (uid, branch, method)
    )`);
    db.exec(`CREATE INDEX IF NOT EXISTS ${this.table}_created_at ON ${this.table} (created_at)`);
    this.getStmt = db.prepare(`SELECT origin, message, data FROM ${this.table} WHERE uid = ? AND branch = ? AND method = ?`);
    this.insertStmt = db.prepare(
      `INSERT INTO ${this.table} (uid, branch, method, origin, created_at, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /**
   * Interface form. `handler` must be synchronous (see the file comment); a
   * returned Promise rolls the transaction back and rejects with a TypeError.
   */
  run(
    key: BarrierKey,
    method: BarrierMethod,
    handler: (db: Database.Database) => BarrierResponse | Promise<BarrierResponse>,
  ): Promise<BarrierResult> {
    try {
      return Promise.resolve(
        this.runSync(key, method, (db) => {
          const response = handler(db);
          if (isPromiseLike(response)) {
            // Keep an unobserved rejection from crashing the process; the transaction is rolled back below.
            void Promise.resolve(response).catch(() => undefined);
            throw new TypeError('SqliteBarrier handlers must be synchronous (better-sqlite3 transactions cannot span an await)');
          }
          return response;
        }),
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The synchronous core: applies the barrier rules and runs `handler` in one IMMEDIATE transaction. */
  runSync(key: BarrierKey, method: BarrierMethod, handler: (db: Database.Database) => BarrierResponse): BarrierResult {
    if (!key.uid || !key.branch) throw new TypeError('barrier key needs a transaction uid and a branch');
    const txn = this.db.transaction(() =>
      applyBarrierRules(
        {
          get: (m) => this.getRow(key, m),
          insert: (m, origin, response) => {
            this.insertStmt.run(key.uid, key.branch, m, origin, this.now(), response.message, response.data);
          },
        },
        method,
        () => handler(this.db),
      ),
    );
    return txn.immediate();
  }

  /**
   * Deletes the rows of transactions whose newest row is older than
   * `olderThanMs` (default 7 days); returns how many rows went.
   *
   * Rule: a transaction's rows may go only when no call for it can arrive any
   * more, i.e. it finished longer ago than its own `timeout` plus the operator's
   * whole retry horizon (retry.maxInterval × remaining attempts; unbounded when
   * maxAttempts is 0, so resolve stuck transactions first). Deleting earlier
   * breaks idempotency (a late repeat of Cancel would run again) and
   * anti-hanging (a late Try would no longer find its blocker). Rows are removed
   * per transaction uid, never one branch or method alone.
   */
  cleanup(olderThanMs: number = DEFAULT_BARRIER_RETENTION_MS): number {
    if (!(olderThanMs >= 0)) throw new RangeError('olderThanMs must be a non-negative number');
    const cutoff = this.now() - olderThanMs;
    const info = this.db
      .prepare(`DELETE FROM ${this.table} WHERE uid IN (SELECT uid FROM ${this.table} GROUP BY uid HAVING MAX(created_at) < ?)`)
      .run(cutoff);
    return info.changes;
  }

  /** The row for (key, method), if any (inspection and tests). */
  getRow(key: BarrierKey, method: BarrierMethod): BarrierRow | undefined {
    const row = this.getStmt.get(key.uid, key.branch, method);
    if (!row) return undefined;
    return { origin: row.origin, message: row.message ?? '', data: row.data ?? Buffer.alloc(0) };
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

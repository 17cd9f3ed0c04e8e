/**
 * The message outbox on SQLite (better-sqlite3): see message.ts (`@kubetx/participant/message`) for the protocol.
 *
 * runLocal's function must be synchronous (better-sqlite3 transactions cannot
 * span an await); it runs in one IMMEDIATE transaction with the outbox row, so
 * writers — including a check-back in another process on the same file — are
 * serialized.
 *
 * Table (created if missing):
 *   kubetx_prepared_messages(uid TEXT PRIMARY KEY, namespace, name,
 *                            state 'committed'|'rolled_back', created_at ms)
 */
import type Database from 'better-sqlite3';
import {
  DEFAULT_OUTBOX_RETENTION_MS,
  DEFAULT_OUTBOX_TABLE,
  isPromiseLike,
  MessageRolledBack,
  type MessageKey,
  type MessageOutbox,
  type OutboxState,
} from './outbox.js';

export interface SqliteOutboxOptions {
  /** @default "kubetx_prepared_messages" */
  table?: string;
  /** Clock for created_at, in ms (tests). @default Date.now */
  now?: () => number;
}

export class SqliteOutbox implements MessageOutbox<Database.Database> {
  readonly table: string;
  private readonly now: () => number;
  private readonly getStmt: Database.Statement<[string], { state: OutboxState }>;
  private readonly insertStmt: Database.Statement<[string, string, string, string, number]>;
  private readonly claimStmt: Database.Statement<[string, string, string, number]>;

  constructor(
    readonly db: Database.Database,
    options: SqliteOutboxOptions = {},
  ) {
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(this.table)) throw new Error(`invalid outbox table name ${JSON.stringify(this.table)}`);
    this.now = options.now ?? Date.now;
    db.exec(`CREATE TABLE IF NOT EXISTS ${this.table} (
      uid TEXT PRIMARY KEY,
      namespace TEXT NOT NULL DEFAULT '',
      name TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL CHECK (state IN ('committed', 'rolled_back')),
      created_at INTEGER NOT NULL
    )`);
    db.exec(`CREATE INDEX IF NOT EXISTS ${this.table}_created_at ON ${this.table} (created_at)`);
    this.getStmt = db.prepare(`SELECT state FROM ${this.table} WHERE uid = ?`);
    this.insertStmt = db.prepare(`INSERT INTO ${this.table} (uid, namespace, name, state, created_at) VALUES (?, ?, ?, ?, ?)`);
    this.claimStmt = db.prepare(
      `INSERT INTO ${this.table} (uid, namespace, name, state, created_at) VALUES (?, ?, ?, 'rolled_back', ?) ON CONFLICT (uid) DO NOTHING`,
    );
  }

  runLocal<T>(key: MessageKey, fn: (db: Database.Database) => T | Promise<T>): Promise<T> {
    try {
      return Promise.resolve(this.runLocalSync(key, fn as (db: Database.Database) => T));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The synchronous core of runLocal. */
  runLocalSync<T>(key: MessageKey, fn: (db: Database.Database) => T): T {
    if (!key.uid) throw new TypeError('outbox key needs a transaction uid');
    const txn = this.db.transaction(() => {
      const row = this.getStmt.get(key.uid);
      if (row?.state === 'rolled_back') {
        throw new MessageRolledBack(`message ${key.namespace}/${key.name} (${key.uid}) was already resolved as rolled back by a check-back; the local transaction is not run`);
      }
      if (row) throw new Error(`message ${key.namespace}/${key.name} (${key.uid}): the local transaction already committed`);
      const result = fn(this.db);
      if (isPromiseLike(result)) {
        void Promise.resolve(result).catch(() => undefined);
        throw new TypeError('SqliteOutbox: the local transaction function must be synchronous (better-sqlite3 transactions cannot span an await)');
      }
      this.insertStmt.run(key.uid, key.namespace, key.name, 'committed', this.now());
      return result;
    });
    return txn.immediate();
  }

  resolve(key: MessageKey): Promise<'COMMITTED' | 'ROLLED_BACK'> {
    try {
      if (!key.uid) throw new TypeError('outbox key needs a transaction uid');
      const txn = this.db.transaction(() => {
        this.claimStmt.run(key.uid, key.namespace, key.name, this.now());
        return this.getStmt.get(key.uid)!.state;
      });
      return Promise.resolve(txn.immediate() === 'committed' ? 'COMMITTED' : 'ROLLED_BACK');
    } catch (err) {
      return Promise.reject(err);
    }
  }

  state(uid: string): Promise<OutboxState | undefined> {
    return Promise.resolve(this.getStmt.get(uid)?.state);
  }

  /**
   * Deletes rows older than `olderThanMs` (default 7 days); returns how many.
   * Safe once the message has a decision (no check-back comes after one), which
   * is at most checkAfter + timeout after creation.
   */
  cleanup(olderThanMs: number = DEFAULT_OUTBOX_RETENTION_MS): number {
    if (!(olderThanMs >= 0)) throw new RangeError('olderThanMs must be a non-negative number');
    return this.db.prepare(`DELETE FROM ${this.table} WHERE created_at < ?`).run(this.now() - olderThanMs).changes;
  }
}

/**
 * The message outbox on PostgreSQL (node-postgres, `pg`): see message.ts for the protocol.
 *
 * runLocal:  BEGIN ISOLATION LEVEL READ COMMITTED
 *            INSERT INTO kubetx_prepared_messages (…, 'committed') ON CONFLICT (uid) DO NOTHING   -- first
 *            fn(client)                                                                          -- async allowed
 *            COMMIT                                                                              -- or ROLLBACK
 * resolve:   INSERT … (…, 'rolled_back') ON CONFLICT (uid) DO NOTHING; SELECT state …            -- autocommit
 *
 * Why it is race-free: runLocal inserts the row first, so while its
 * transaction is open the primary-key entry is locked. A concurrent check-back's
 * INSERT waits for that transaction to end: committed → the insert conflicts
 * and the SELECT (a new statement, a new snapshot) reads 'committed'; rolled
 * back → the claim goes in as 'rolled_back'. Conversely, a runLocal starting
 * after a claim finds the conflict, runs nothing and throws MessageRolledBack.
 *
 * fn receives the transaction's PoolClient and must not COMMIT, ROLLBACK or
 * release it. Table (created if missing, by the first call or `init`):
 *   kubetx_prepared_messages(uid text PRIMARY KEY, namespace text, name text,
 *                            state text 'committed'|'rolled_back', created_at bigint ms)
 */
import type { Pool, PoolClient } from 'pg';
import { ensureTableWithCreatedAtIndex, inTransaction, onceUntilSuccess, PG_IDENT } from './pg-util.js';
import {
  DEFAULT_OUTBOX_RETENTION_MS,
  DEFAULT_OUTBOX_TABLE,
  MessageRolledBack,
  type MessageKey,
  type MessageOutbox,
  type OutboxState,
} from './outbox.js';

export interface PgOutboxOptions {
  /** Table name, optionally schema-qualified ("schema.table"). @default "kubetx_prepared_messages" */
  table?: string;
  /** Clock for created_at, in ms (tests). @default Date.now */
  now?: () => number;
}

export class PgOutbox implements MessageOutbox<PoolClient> {
  readonly table: string;
  private readonly now: () => number;
  private readonly initOnce = onceUntilSuccess(() =>
    ensureTableWithCreatedAtIndex(
      this.pool,
      this.table,
      `kubetx_outbox_init:${this.table}`,
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        uid text PRIMARY KEY,
        namespace text NOT NULL DEFAULT '',
        name text NOT NULL DEFAULT '',
        state text NOT NULL CHECK (state IN ('committed', 'rolled_back')),
        created_at bigint NOT NULL
      )`,
    ),
  );

  constructor(
    readonly pool: Pool,
    options: PgOutboxOptions = {},
  ) {
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE;
    if (!PG_IDENT.test(this.table)) throw new Error(`invalid outbox table name ${JSON.stringify(this.table)}`);
    this.now = options.now ?? Date.now;
  }

  /** Creates the table if missing (once per instance; the other methods call it). */
  init(): Promise<void> {
    return this.initOnce();
  }

  async runLocal<T>(key: MessageKey, fn: (client: PoolClient) => T | Promise<T>): Promise<T> {
    if (!key.uid) throw new TypeError('outbox key needs a transaction uid');
    await this.init();
    return this.transaction(async (client) => {
      const inserted = await client.query(
        `INSERT INTO ${this.table} (uid, namespace, name, state, created_at) VALUES ($1, $2, $3, 'committed', $4)
         ON CONFLICT (uid) DO NOTHING RETURNING uid`,
        [key.uid, key.namespace, key.name, this.now()],
      );
      if (inserted.rowCount === 0) {
        const row = await client.query<{ state: OutboxState }>(`SELECT state FROM ${this.table} WHERE uid = $1`, [key.uid]);
        if (row.rows[0]?.state === 'rolled_back') {
          throw new MessageRolledBack(`message ${key.namespace}/${key.name} (${key.uid}) was already resolved as rolled back by a check-back; the local transaction is not run`);
        }
        throw new Error(`message ${key.namespace}/${key.name} (${key.uid}): the local transaction already committed`);
      }
      return fn(client);
    });
  }

  async resolve(key: MessageKey): Promise<'COMMITTED' | 'ROLLED_BACK'> {
    if (!key.uid) throw new TypeError('outbox key needs a transaction uid');
    await this.init();
    await this.pool.query(
      `INSERT INTO ${this.table} (uid, namespace, name, state, created_at) VALUES ($1, $2, $3, 'rolled_back', $4) ON CONFLICT (uid) DO NOTHING`,
      [key.uid, key.namespace, key.name, this.now()],
    );
    const state = await this.state(key.uid);
    return state === 'committed' ? 'COMMITTED' : 'ROLLED_BACK';
  }

  async state(uid: string): Promise<OutboxState | undefined> {
    await this.init();
    const r = await this.pool.query<{ state: OutboxState }>(`SELECT state FROM ${this.table} WHERE uid = $1`, [uid]);
    return r.rows[0]?.state;
  }

  /** Deletes rows older than `olderThanMs` (default 7 days); returns how many. */
  async cleanup(olderThanMs: number = DEFAULT_OUTBOX_RETENTION_MS): Promise<number> {
    if (!(olderThanMs >= 0)) throw new RangeError('olderThanMs must be a non-negative number');
    await this.init();
    const r = await this.pool.query(`DELETE FROM ${this.table} WHERE created_at < $1`, [this.now() - olderThanMs]);
    return r.rowCount ?? 0;
  }

  private transaction<T>(body: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, 'BEGIN ISOLATION LEVEL READ COMMITTED', body);
  }
}

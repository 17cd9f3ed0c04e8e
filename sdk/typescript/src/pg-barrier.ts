/**
 * The barrier on PostgreSQL (node-postgres, `pg`).
 *
 * Each call runs in its own pooled connection, in one transaction:
 *
 *   BEGIN ISOLATION LEVEL READ COMMITTED
 *   INSERT INTO kubetx_barrier … (placeholder row for this uid/branch/method)
 *     ON CONFLICT DO NOTHING                          -- the claim, always first
 *   … the other barrier rows the rules need (SELECT … FOR UPDATE, blocker INSERT) …
 *   handler(client)                                   -- async; writes through `client`
 *   UPDATE kubetx_barrier SET message, data …         -- fills the placeholder in
 *   COMMIT                                            -- or ROLLBACK if anything threw
 *
 * so the handler's effect and the barrier row commit or roll back together.
 *
 * Why this is safe for concurrent calls under READ COMMITTED:
 *
 *  - Identical calls (same uid, branch, method). The claim inserts into the
 *    primary key. A second identical call's INSERT finds the first's
 *    uncommitted index entry and waits for that transaction to end. If it
 *    commits, the second sees the conflict (DO NOTHING), reads the now-committed
 *    row (each READ COMMITTED statement takes a fresh snapshot) and answers from
 *    it (rule 1) or refuses (rule 3); if it rolls back, the second insert goes
 *    through and the second call runs the handler. The handler runs at most once.
 *  - Try racing its Cancel (Execute/Compensate alike). Cancel looks for the Try
 *    row; an in-flight Try is invisible to it, so Cancel INSERTs the Try blocker
 *    ON CONFLICT DO NOTHING, which waits on the Try's uncommitted row: if the Try
 *    commits, the blocker insert conflicts, Cancel re-reads the Try row and
 *    compensates; if the Try rolls back, the blocker goes in (null compensation).
 *    Conversely a Try whose Cancel is in flight waits on the Cancel's blocker
 *    and is then refused. Never a hanging reservation.
 *  - Confirm racing Cancel (a protocol violation the operator never commits):
 *    both lock the Try row (SELECT … FOR UPDATE) before looking for each other,
 *    so the second sees the first's committed row and is refused.
 *  Every wait is on a row or index entry; nothing needs a snapshot spanning
 *  statements, which is why READ COMMITTED suffices. It is set explicitly: under
 *  REPEATABLE READ/SERIALIZABLE, ON CONFLICT with a row committed after the
 *  transaction's snapshot raises a serialization failure instead (retryable,
 *  but noisy). The handler therefore also runs under READ COMMITTED: use
 *  SELECT … FOR UPDATE or conditional UPDATEs (… WHERE stock >= $n) for its own
 *  invariants.
 *
 * Handlers receive the `PoolClient` and may await freely, but must not COMMIT,
 * ROLLBACK or release it (SAVEPOINTs are fine). An error that aborts the
 * transaction, even if the handler catches it, makes the call fail (retryably)
 * and roll back. Anything thrown rolls everything back: nothing is recorded and
 * the same call may come again (rule 5).
 *
 * Table (created if missing, by the first `run`/`cleanup`/`init`):
 *   kubetx_barrier(uid text, branch text, method text, origin 'call'|'blocker',
 *                  created_at bigint ms, message text, data bytea,
 *                  PRIMARY KEY (uid, branch, method))
 */
import type { Pool, PoolClient } from 'pg';
import { ensureTableWithCreatedAtIndex, inTransaction, onceUntilSuccess, PG_IDENT } from './pg-util.js';
import {
  applyBarrierRulesAsync,
  BARRIER_METHODS,
  DEFAULT_BARRIER_RETENTION_MS,
  DEFAULT_BARRIER_TABLE,
  type AsyncBarrierStore,
  type Barrier,
  type BarrierKey,
  type BarrierMethod,
  type BarrierResponse,
  type BarrierResult,
  type BarrierRow,
} from './barrier.js';

export interface PgBarrierOptions {
  /** Table name, optionally schema-qualified ("schema.table"). @default "kubetx_barrier" */
  table?: string;
  /** Clock for created_at, in ms (tests). @default Date.now */
  now?: () => number;
  /**
   * lock_timeout for the barrier's transaction: how long a call waits for a
   * concurrent call on the same key (or any other lock its handler takes)
   * before failing retryably. @default the server's lock_timeout (usually none)
   */
  lockTimeoutMs?: number;
}

interface Row {
  origin: 'call' | 'blocker';
  message: string | null;
  data: Buffer | null;
}

const EMPTY = Buffer.alloc(0);

export class PgBarrier implements Barrier<PoolClient> {
  readonly table: string;
  private readonly now: () => number;
  private readonly lockTimeoutMs: number | undefined;
  private readonly initOnce = onceUntilSuccess(() =>
    ensureTableWithCreatedAtIndex(
      this.pool,
      this.table,
      `kubetx_barrier_init:${this.table}`,
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        uid text NOT NULL,
        branch text NOT NULL,
        method text NOT NULL,
        origin text NOT NULL CHECK (origin IN ('call', 'blocker')),
        created_at bigint NOT NULL,
        message text NOT NULL DEFAULT '',
        data bytea,
        PRIMARY KEY (uid, branch, method)
      )`,
    ),
  );
  private readonly sql: { select: string; selectForUpdate: string; claim: string; insert: string; fill: string };

  constructor(
    readonly pool: Pool,
    options: PgBarrierOptions = {},
  ) {
    this.table = options.table ?? DEFAULT_BARRIER_TABLE;
    if (!PG_IDENT.test(this.table)) throw new Error(`invalid barrier table name ${JSON.stringify(this.table)}`);
    this.now = options.now ?? Date.now;
    if (options.lockTimeoutMs !== undefined && !(Number.isInteger(options.lockTimeoutMs) && options.lockTimeoutMs >= 0)) {
      throw new RangeError('lockTimeoutMs must be a non-negative integer');
    }
    this.lockTimeoutMs = options.lockTimeoutMs;
    const t = this.table;
    const where = 'uid = $1 AND branch = $2 AND method = $3';
    this.sql = {
      select: `SELECT origin, message, data FROM ${t} WHERE ${where}`,
      selectForUpdate: `SELECT origin, message, data FROM ${t} WHERE ${where} FOR UPDATE`,
      claim: `INSERT INTO ${t} (uid, branch, method, origin, created_at, message, data)
              VALUES ($1, $2, $3, 'call', $4, '', NULL) ON CONFLICT (uid, branch, method) DO NOTHING`,
      insert: `INSERT INTO ${t} (uid, branch, method, origin, created_at, message, data)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (uid, branch, method) DO NOTHING`,
      fill: `UPDATE ${t} SET origin = $4, created_at = $5, message = $6, data = $7 WHERE ${where}`,
    };
  }

  /** Creates the table and its index if missing (once per instance; `run` and `cleanup` call it). */
  init(): Promise<void> {
    return this.initOnce();
  }


  /**
   * Applies the barrier rules and runs `handler` (sync or async) with the
   * transaction's client; commits the effect with the barrier row, or rolls
   * both back and rethrows.
   */
  async run(
    key: BarrierKey,
    method: BarrierMethod,
    handler: (client: PoolClient) => BarrierResponse | Promise<BarrierResponse>,
  ): Promise<BarrierResult> {
    if (!key.uid || !key.branch) throw new TypeError('barrier key needs a transaction uid and a branch');
    if (!BARRIER_METHODS.includes(method)) throw new TypeError(`unknown barrier method ${JSON.stringify(method)}`);
    await this.init();
    return inTransaction(this.pool, 'BEGIN ISOLATION LEVEL READ COMMITTED', async (client) => {
      if (this.lockTimeoutMs !== undefined) await client.query(`SET LOCAL lock_timeout = ${this.lockTimeoutMs}`);
      return applyBarrierRulesAsync(this.store(client, key, method), method, () => handler(client));
    });
  }

  /** The rows of one key, inside `client`'s transaction; the own method's row is claimed first. */
  private store(client: PoolClient, key: BarrierKey, own: BarrierMethod): AsyncBarrierStore {
    let claimed = false;
    const read = async (method: BarrierMethod, lock: boolean): Promise<BarrierRow | undefined> => {
      const res = await client.query<Row>(lock ? this.sql.selectForUpdate : this.sql.select, [key.uid, key.branch, method]);
      return toBarrierRow(res.rows[0]);
    };
    return {
      claim: async (method) => {
        const res = await client.query(this.sql.claim, [key.uid, key.branch, method, this.now()]);
        if (res.rowCount === 1) {
          claimed = true;
          return undefined;
        }
        // Conflict: the row was committed (possibly by a call we just waited for).
        const row = await read(method, false);
        if (!row) throw new Error(`barrier: the ${method} row changed concurrently; try again`);
        return row;
      },
      // Lock what the rules read: Confirm and Cancel both lock the Try row first, so they serialize.
      get: (method) => read(method, true),
      insert: async (method, origin, response) => {
        const params = [key.uid, key.branch, method, origin, this.now(), response.message, response.data];
        if (method === own && claimed) {
          const res = await client.query(this.sql.fill, params);
          if (res.rowCount !== 1) throw new Error(`barrier: the claimed ${method} row is gone; try again`);
          return true;
        }
        const res = await client.query(this.sql.insert, params);
        return res.rowCount === 1;
      },
    };
  }

  /**
   * Deletes the rows of transactions whose newest row is older than
   * `olderThanMs` (default 7 days); resolves to how many rows went.
   *
   * Rule (as SqliteBarrier.cleanup): a transaction's rows may go only when no
   * call for it can arrive any more, i.e. it finished longer ago than its own
   * `timeout` plus the operator's whole retry horizon (retry.maxInterval ×
   * remaining attempts; unbounded when maxAttempts is 0, so resolve stuck
   * transactions first). Deleting earlier breaks idempotency (a late repeat of
   * Cancel would run again) and anti-hanging (a late Try would no longer find
   * its blocker). Rows are removed per transaction uid, never one branch or
   * method alone.
   */
  async cleanup(olderThanMs: number = DEFAULT_BARRIER_RETENTION_MS): Promise<number> {
    if (!(olderThanMs >= 0)) throw new RangeError('olderThanMs must be a non-negative number');
    await this.init();
    const cutoff = this.now() - olderThanMs;
    const res = await this.pool.query(
      `DELETE FROM ${this.table} WHERE uid IN (SELECT uid FROM ${this.table} GROUP BY uid HAVING MAX(created_at) < $1)`,
      [cutoff],
    );
    return res.rowCount ?? 0;
  }

  /** The committed row for (key, method), if any (inspection and tests). */
  async getRow(key: BarrierKey, method: BarrierMethod): Promise<BarrierRow | undefined> {
    await this.init();
    const res = await this.pool.query<Row>(this.sql.select, [key.uid, key.branch, method]);
    return toBarrierRow(res.rows[0]);
  }
}

function toBarrierRow(row: Row | undefined): BarrierRow | undefined {
  if (!row) return undefined;
  return { origin: row.origin, message: row.message ?? '', data: row.data ?? EMPTY };
}

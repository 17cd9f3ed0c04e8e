/**
 * What the PostgreSQL barrier and outbox share: one transaction on a
 * checked-out client, and creating a table with its created_at index once.
 */
import type { Pool, PoolClient } from 'pg';

/** A table name, optionally schema-qualified, safe to put into SQL text. */
export const PG_IDENT = /^(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Runs `body` in one transaction (`begin` opens it) on a client of its own;
 * commits, or rolls back and rethrows. A connection that failed is destroyed
 * instead of going back to the pool.
 */
export async function inTransaction<T>(pool: Pool, begin: string, body: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no 'error' listener: a connection lost while the
  // body awaits something else would otherwise crash the process.
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken ??= err;
  };
  client.on('error', onError);
  try {
    await client.query(begin);
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (e) {
      broken ??= e instanceof Error ? e : new Error(String(e));
    }
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/**
 * Creates `table` (with `ddl`, a CREATE TABLE IF NOT EXISTS) and its
 * `<table>_created_at` index unless both exist.
 */
export async function ensureTableWithCreatedAtIndex(pool: Pool, table: string, lockName: string, ddl: string): Promise<void> {
  const dot = table.lastIndexOf('.');
  const index = `${table.slice(dot + 1)}_created_at`;
  const qualifiedIndex = dot < 0 ? index : `${table.slice(0, dot)}.${index}`;
  // Look before creating: CREATE INDEX IF NOT EXISTS locks the table against
  // writes even when the index exists, so it would wait for (and block) the
  // transactions in flight in other processes.
  const found = await pool.query<{ t: string | null; i: string | null }>('SELECT to_regclass($1) AS t, to_regclass($2) AS i', [table, qualifiedIndex]);
  if (found.rows[0]?.t && found.rows[0]?.i) return;
  await inTransaction(pool, 'BEGIN', async (client) => {
    // CREATE TABLE IF NOT EXISTS is not safe against itself run concurrently
    // (two processes starting at once): serialize it.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockName]);
    await client.query(ddl);
    await client.query(`CREATE INDEX IF NOT EXISTS ${index} ON ${table} (created_at)`);
  });
}

/** `create()` once; after a failure the next call tries again. */
export function onceUntilSuccess(create: () => Promise<void>): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () => {
    ready ??= create().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };
}

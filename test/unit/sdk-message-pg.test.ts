// PgOutbox against a real PostgreSQL server (started by this file). The race
// between a local transaction and a check-back is forced, not hoped for: the
// local transaction stays open until pg_stat_activity shows the check-back
// waiting on its lock.
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MessageRolledBack } from '../../sdk/typescript/src/index.js';
import { PgOutbox } from '../../sdk/typescript/src/pg.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

let server: PostgresServer;
let pool: pg.Pool;
let outbox: PgOutbox;
let seq = 0;

beforeAll(async () => {
  server = await startPostgres({ database: 'kubetx_outbox' });
  pool = new pg.Pool({ connectionString: server.url, max: 10 });
}, 90_000);

afterAll(async () => {
  await pool?.end();
  await server?.stop();
}, 30_000);

beforeEach(async () => {
  outbox = new PgOutbox(pool, { table: `outbox_${++seq}` });
  await pool.query('DROP TABLE IF EXISTS orders');
  await pool.query('CREATE TABLE orders (id int PRIMARY KEY, status text)');
});

const key = (uid: string) => ({ uid, namespace: 'shop', name: `order-${uid}` });

async function waitForLockWaiter(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (r.rows[0]!.n > 0) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('no session ever waited on a lock');
}

describe('PgOutbox', () => {
  it('runLocal commits the change with the row; resolve → COMMITTED; a failed one leaves nothing → ROLLED_BACK', async () => {
    await outbox.runLocal(key('a'), async (c) => {
      await c.query(`INSERT INTO orders VALUES (1, 'CREATED')`);
    });
    expect(await outbox.resolve(key('a'))).toBe('COMMITTED');
    await expect(
      outbox.runLocal(key('b'), async (c) => {
        await c.query(`INSERT INTO orders VALUES (2, 'CREATED')`);
        throw new Error('credit limit');
      }),
    ).rejects.toThrow('credit limit');
    expect((await pool.query('SELECT id FROM orders ORDER BY id')).rows).toEqual([{ id: 1 }]);
    expect(await outbox.state('b')).toBeUndefined();
    expect(await outbox.resolve(key('b'))).toBe('ROLLED_BACK');
    expect(await outbox.state('b')).toBe('rolled_back');
  });

  it('a check-back during a local transaction waits for it: committed → COMMITTED', async () => {
    let checking: Promise<string> | undefined;
    await outbox.runLocal(key('c'), async (c) => {
      await c.query(`INSERT INTO orders VALUES (3, 'CREATED')`);
      checking = outbox.resolve(key('c'));
      await waitForLockWaiter();
    });
    expect(await checking).toBe('COMMITTED');
  });

  it('a check-back during a local transaction waits for it: rolled back → ROLLED_BACK, and it stays so', async () => {
    let checking: Promise<string> | undefined;
    await expect(
      outbox.runLocal(key('d'), async () => {
        checking = outbox.resolve(key('d'));
        await waitForLockWaiter();
        throw new Error('payment declined');
      }),
    ).rejects.toThrow('payment declined');
    expect(await checking).toBe('ROLLED_BACK');
    await expect(outbox.runLocal(key('d'), async () => 1)).rejects.toBeInstanceOf(MessageRolledBack);
  });

  it('a check-back before the local transaction claims it: runLocal runs nothing', async () => {
    expect(await outbox.resolve(key('e'))).toBe('ROLLED_BACK');
    let ran = false;
    await expect(outbox.runLocal(key('e'), async () => (ran = true))).rejects.toBeInstanceOf(MessageRolledBack);
    expect(ran).toBe(false);
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it('cleanup removes old rows', async () => {
    let now = 5_000_000;
    const o = new PgOutbox(pool, { table: `outbox_clean_${seq}`, now: () => now });
    await o.runLocal(key('f'), async () => 1);
    now += 10_000;
    await o.runLocal(key('g'), async () => 1);
    expect(await o.cleanup(5_000)).toBe(1);
    expect(await o.state('f')).toBeUndefined();
    expect(await o.state('g')).toBe('committed');
  });
});

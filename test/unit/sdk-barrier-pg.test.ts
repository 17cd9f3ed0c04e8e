// PgBarrier against a real PostgreSQL server (started by this file): the
// table, async handlers, lost connections, and concurrency with real concurrent
// connections. The rules themselves are in the shared suite
// (sdk-barrier-stores.test.ts).
//
// Interleavings are forced, not hoped for: a handler holds its transaction open
// until pg_stat_activity shows the competing call(s) waiting on a lock.
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Refused,
  serveParticipant,
  type BarrierKey,
  type BarrierMethod,
  type BarrierResponse,
  type BarrierResult,
  type Participant,
} from '../../sdk/typescript/src/index.js';
import { PgBarrier } from '../../sdk/typescript/src/pg.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';
import { callErr, callOk, request, tccClient } from './sdk-test-client.js';

// A real server on a busy CI machine: generous limits (the tests take milliseconds each when idle).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 90_000 });

const N = 20;
const resp = (message: string, data = ''): BarrierResponse => ({ message, data: Buffer.from(data) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: PostgresServer;
let pool: pg.Pool;

beforeAll(async () => {
  server = await startPostgres();
  pool = new pg.Pool({ connectionString: server.url, max: N + 10 });
}, 90_000);

afterAll(() => stopPostgres(server, [pool]), 30_000);

let table: string;
let seq = 0;
let barrier: PgBarrier;
const key: BarrierKey = { uid: 'tx-1', branch: 'inventory' };

beforeEach(async () => {
  table = `barrier_${++seq}`;
  barrier = new PgBarrier(pool, { table });
  await pool.query(`DROP TABLE IF EXISTS effects, holds`);
  await pool.query(`CREATE TABLE effects (seq serial PRIMARY KEY, uid text, method text)`);
  await pool.query(`CREATE TABLE holds (uid text PRIMARY KEY)`);
});

afterEach(async () => {
  // No call may leave a connection checked out or a transaction open.
  expect(pool.totalCount - pool.idleCount).toBe(0);
  const open = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
  );
  expect(open.rows[0]!.n).toBe(0);
});

/** Resolves once `n` sessions of the test database wait on a lock (rows, transaction ids, advisory). */
async function lockWaiters(n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (r.rows[0]!.n >= n) return;
    if (Date.now() > deadline) throw new Error(`expected ${n} sessions waiting on a lock, saw ${r.rows[0]!.n}`);
    await sleep(5);
  }
}

async function effects(): Promise<string[]> {
  return (await pool.query<{ uid: string; method: string }>(`SELECT uid, method FROM effects ORDER BY seq`)).rows.map((r) => `${r.uid}/${r.method}`);
}

async function rows(): Promise<string[]> {
  const r = await pool.query<{ uid: string; method: string; origin: string }>(`SELECT uid, method, origin FROM ${table} ORDER BY uid, method`);
  return r.rows.map((x) => `${x.uid}/${x.method}/${x.origin}`);
}

type Settled = { ok: true; result: BarrierResult } | { ok: false; error: unknown };
const settle = (p: Promise<BarrierResult>): Promise<Settled> =>
  p.then(
    (result) => ({ ok: true as const, result }),
    (error: unknown) => ({ ok: false as const, error }),
  );

/** A handler that records its effect through the transaction's client. */
function effect(method: BarrierMethod, opts: { before?: (n: number) => Promise<void>; data?: (n: number) => string } = {}) {
  const h = async (tx: pg.PoolClient) => {
    const n = ++h.runs;
    await tx.query(`INSERT INTO effects (uid, method) VALUES ($1, $2)`, [key.uid, method]);
    await opts.before?.(n);
    return resp(`${method} done`, opts.data?.(n) ?? '');
  };
  h.runs = 0;
  return h;
}

describe('PgBarrier: table and transaction', () => {
  it('creates the table with the documented columns and primary key', async () => {
    await barrier.init();
    const cols = await pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
      [table],
    );
    expect(cols.rows.map((c) => `${c.column_name} ${c.data_type} ${c.is_nullable}`)).toEqual([
      'uid text NO',
      'branch text NO',
      'method text NO',
      'origin text NO',
      'created_at bigint NO',
      'message text NO',
      'data bytea YES',
    ]);
    const pk = await pool.query<{ attname: string }>(
      `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
      [table],
    );
    expect(pk.rows.map((r) => r.attname)).toEqual(['uid', 'branch', 'method']);
    const idx = await pool.query(`SELECT 1 FROM pg_indexes WHERE tablename = $1 AND indexname = $2`, [table, `${table}_created_at`]);
    expect(idx.rowCount).toBe(1);
  });

  it('defaults to kubetx_barrier; takes a schema-qualified name; concurrent first use creates the table once', async () => {
    expect(new PgBarrier(pool).table).toBe('kubetx_barrier');
    expect(() => new PgBarrier(pool, { table: 'x; DROP TABLE effects' })).toThrow(/invalid barrier table name/);
    await pool.query(`DROP SCHEMA IF EXISTS app CASCADE`);
    await pool.query(`CREATE SCHEMA app`);
    const many = Array.from({ length: 8 }, () => new PgBarrier(pool, { table: 'app.participant_barrier' }));
    await Promise.all(many.map((b) => b.init()));
    const t = effect('Try', { data: () => 'r-1' });
    expect((await many[0]!.run(key, 'Try', t)).outcome).toBe('executed');
    const again = await many[1]!.run(key, 'Try', t);
    expect(again).toEqual({ outcome: 'duplicate', response: resp('Try done', 'r-1') });
    expect(await many[2]!.getRow(key, 'Try')).toEqual({ origin: 'call', message: 'Try done', data: Buffer.from('r-1') });
    expect(t.runs).toBe(1);
    await pool.query(`DROP SCHEMA app CASCADE`);
  });

  it('the async handler works inside the transaction: its writes are invisible outside until the barrier row commits with them', async () => {
    let seenInside = -1;
    let seenOutside = -1;
    const r = await barrier.run(key, 'Try', async (tx) => {
      await tx.query(`INSERT INTO holds VALUES ($1)`, [key.uid]);
      await sleep(10);
      seenInside = (await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM holds`)).rows[0]!.n;
      seenOutside = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM holds`)).rows[0]!.n;
      const barrierRows = (await pool.query(`SELECT 1 FROM ${table}`)).rowCount;
      expect(barrierRows).toBe(0); // the claim is not visible outside either
      return resp('held', JSON.stringify({ hold: key.uid }));
    });
    expect([seenInside, seenOutside]).toEqual([1, 0]);
    expect(r.response.data.toString()).toBe('{"hold":"tx-1"}');
    expect((await pool.query(`SELECT 1 FROM holds`)).rowCount).toBe(1);
    expect(await rows()).toEqual(['tx-1/Try/call']);
  });

  it('a handler that swallows a database error cannot commit: the call fails retryably and records nothing', async () => {
    const bad = async (tx: pg.PoolClient) => {
      await tx.query(`INSERT INTO holds VALUES ($1)`, [key.uid]);
      await tx.query(`SELECT * FROM no_such_table`).catch(() => undefined);
      return resp('pretends all is well');
    };
    const err = await barrier.run(key, 'Try', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(Refused);
    expect((err as Error).message).toMatch(/current transaction is aborted/);
    expect(await rows()).toEqual([]);
    expect((await pool.query(`SELECT 1 FROM holds`)).rowCount).toBe(0);
    expect((await barrier.run(key, 'Try', effect('Try'))).outcome).toBe('executed');
  });

  it('a connection lost during the handler fails the call, discards the connection, and records nothing', async () => {
    const before = pool.totalCount;
    const err = await barrier
      .run(key, 'Try', async (tx) => {
        await tx.query(`INSERT INTO holds VALUES ($1)`, [key.uid]);
        const pid = (await tx.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid;
        await pool.query(`SELECT pg_terminate_backend($1)`, [pid]);
        await sleep(50); // the 'error' arrives while the handler is not querying: must not crash the process
        await tx.query(`SELECT 1`);
        return resp('never');
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(pool.totalCount).toBeLessThanOrEqual(before);
    expect(await rows()).toEqual([]);
    expect((await pool.query(`SELECT 1 FROM holds`)).rowCount).toBe(0);
    expect((await barrier.run(key, 'Try', effect('Try'))).outcome).toBe('executed');
  });
});

describe('PgBarrier: concurrency (real concurrent connections)', () => {
  it(`${N} identical Try calls racing on one key: the handler runs once, all answer OK with the same data`, async () => {
    const t = effect('Try', {
      // The first caller holds its transaction until the other N-1 are blocked on its claim.
      before: (n) => (n === 1 ? lockWaiters(N - 1) : Promise.resolve()),
      data: () => JSON.stringify({ reservationId: `r-${Math.random().toString(36).slice(2)}` }),
    });
    const results = await Promise.all(Array.from({ length: N }, () => barrier.run(key, 'Try', t)));
    expect(t.runs).toBe(1);
    expect(await effects()).toEqual(['tx-1/Try']);
    expect(results.filter((r) => r.outcome === 'executed')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'duplicate')).toHaveLength(N - 1);
    const data = new Set(results.map((r) => r.response.data.toString()));
    expect(data.size).toBe(1);
    expect([...data][0]).toMatch(/^\{"reservationId":"r-/);
    expect(new Set(results.map((r) => r.response.message))).toEqual(new Set(['Try done']));
  });

  it('the first racer rolls back: one waiting racer proceeds and runs, the rest answer from its row', async () => {
    const t = effect('Try', {
      before: async (n) => {
        if (n === 1) {
          await lockWaiters(N - 1);
          throw new Error('first attempt fails');
        }
      },
      data: (n) => `run-${n}`,
    });
    const settled = await Promise.all(Array.from({ length: N }, () => settle(barrier.run(key, 'Try', t))));
    const failed = settled.filter((s) => !s.ok);
    const ok = settled.flatMap((s) => (s.ok ? [s.result] : []));
    expect(failed).toHaveLength(1);
    expect((failed[0] as { error: Error }).error.message).toBe('first attempt fails');
    expect(ok.filter((r) => r.outcome === 'executed')).toHaveLength(1);
    expect(ok.filter((r) => r.outcome === 'duplicate')).toHaveLength(N - 2);
    expect(new Set(ok.map((r) => r.response.data.toString()))).toEqual(new Set(['run-2']));
    expect(t.runs).toBe(2);
    expect(await effects()).toEqual(['tx-1/Try']); // the first run's effect was rolled back
  });

  it(`${N} Cancel calls racing with no Try: one null compensation, the others replay it; the Try is then refused`, async () => {
    const c = effect('Cancel');
    const results = await Promise.all(Array.from({ length: N }, () => barrier.run(key, 'Cancel', c)));
    expect(results.filter((r) => r.outcome === 'null-compensation')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'duplicate')).toHaveLength(N - 1);
    expect(new Set(results.map((r) => r.response.message)).size).toBe(1);
    expect(c.runs).toBe(0);
    expect(await rows()).toEqual(['tx-1/Cancel/call', 'tx-1/Try/blocker']);
    await expect(barrier.run(key, 'Try', effect('Try'))).rejects.toBeInstanceOf(Refused);
  });

  it('Try in flight when its Cancel arrives: the Cancel waits for it, then runs the compensation', async () => {
    const t = effect('Try', { before: () => lockWaiters(1) }); // holds until the Cancel is blocked
    const c = effect('Cancel');
    const [tr, cr] = await Promise.all([
      barrier.run(key, 'Try', t),
      (async () => {
        while (t.runs === 0) await sleep(1); // the Try has claimed its row
        return barrier.run(key, 'Cancel', c);
      })(),
    ]);
    expect([tr.outcome, cr.outcome]).toEqual(['executed', 'executed']);
    expect(await effects()).toEqual(['tx-1/Try', 'tx-1/Cancel']);
    expect(await rows()).toEqual(['tx-1/Cancel/call', 'tx-1/Try/call']);
  });

  it('Try in flight fails when its Cancel arrives: the Cancel waits, then null-compensates; the retried Try is refused', async () => {
    const t = effect('Try', {
      before: async () => {
        await lockWaiters(1);
        throw new Error('Try crashed');
      },
    });
    const c = effect('Cancel');
    const [tr, cr] = await Promise.all([
      settle(barrier.run(key, 'Try', t)),
      (async () => {
        while (t.runs === 0) await sleep(1);
        return barrier.run(key, 'Cancel', c);
      })(),
    ]);
    expect(tr.ok).toBe(false);
    expect(cr.outcome).toBe('null-compensation');
    await expect(barrier.run(key, 'Try', t)).rejects.toBeInstanceOf(Refused);
    expect([t.runs, c.runs]).toEqual([1, 0]);
    expect(await effects()).toEqual([]);
  });

  it('Cancel in flight (blocker written, not committed) when the Try arrives: the Try waits, then is refused', async () => {
    await barrier.init();
    // Pause the Cancel right after it inserts the blocker, inside its transaction.
    await pool.query(`CREATE OR REPLACE FUNCTION ${table}_pause() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.origin = 'blocker' THEN PERFORM pg_advisory_xact_lock(4242); END IF; RETURN NEW; END $$`);
    await pool.query(`CREATE TRIGGER pause AFTER INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_pause()`);
    const gate = await pool.connect();
    try {
      await gate.query(`SELECT pg_advisory_lock(4242)`);
      const t = effect('Try');
      const cancel = barrier.run(key, 'Cancel', effect('Cancel'));
      await lockWaiters(1); // the Cancel holds the uncommitted blocker
      const tryCall = settle(barrier.run(key, 'Try', t));
      await lockWaiters(2); // the Try waits on the blocker's index entry
      await gate.query(`SELECT pg_advisory_unlock(4242)`);
      expect((await cancel).outcome).toBe('null-compensation');
      const tr = await tryCall;
      expect(tr.ok).toBe(false);
      expect((tr as { error: unknown }).error).toBeInstanceOf(Refused);
      expect(t.runs).toBe(0);
    } finally {
      gate.release();
      await pool.query(`DROP TRIGGER IF EXISTS pause ON ${table}`);
    }
  });

  it('random Try/Cancel races: always (Try ran, Cancel compensated) or (Cancel null-compensated, Try refused), never a hanging hold', async () => {
    const rounds = 40;
    const seen = { compensated: 0, nullCompensated: 0 };
    for (let i = 0; i < rounds; i++) {
      const k = { uid: `race-${i}`, branch: 'inventory' };
      const tryCall = async () => {
        await sleep(Math.random() * 3);
        return barrier.run(k, 'Try', async (tx) => {
          await tx.query(`INSERT INTO holds VALUES ($1)`, [k.uid]);
          await sleep(Math.random() * 3);
          return resp('held', k.uid);
        });
      };
      const cancelCall = async () => {
        await sleep(Math.random() * 3);
        return barrier.run(k, 'Cancel', async (tx) => {
          const del = await tx.query(`DELETE FROM holds WHERE uid = $1`, [k.uid]);
          expect(del.rowCount).toBe(1); // compensation only ever runs with the Try's hold there
          return resp('released');
        });
      };
      const [tr, cr] = await Promise.all([settle(tryCall()), settle(cancelCall())]);
      expect(cr.ok).toBe(true);
      const cancelOutcome = (cr as { result: BarrierResult }).result.outcome;
      if (tr.ok) {
        expect(tr.result.outcome).toBe('executed');
        expect(cancelOutcome).toBe('executed');
        seen.compensated++;
      } else {
        expect(tr.error).toBeInstanceOf(Refused);
        expect(cancelOutcome).toBe('null-compensation');
        seen.nullCompensated++;
      }
    }
    expect(seen.compensated + seen.nullCompensated).toBe(rounds);
    expect((await pool.query(`SELECT uid FROM holds`)).rows).toEqual([]); // no hanging reservation
    console.info(`Try/Cancel races: ${seen.compensated} compensated, ${seen.nullCompensated} null-compensated`);
  });

  it.each([
    ['Confirm', 'Cancel'],
    ['Cancel', 'Confirm'],
  ] as const)('%s in flight when %s arrives: they serialize on the Try row and the second is FAILED_PRECONDITION', async (first, second) => {
    await barrier.run(key, 'Try', effect('Try'));
    const a = effect(first, { before: () => lockWaiters(1) });
    const b = effect(second);
    const [ra, rb] = await Promise.all([
      settle(barrier.run(key, first, a)),
      (async () => {
        while (a.runs === 0) await sleep(1);
        return settle(barrier.run(key, second, b));
      })(),
    ]);
    expect(ra.ok && ra.result.outcome).toBe('executed');
    expect(rb.ok).toBe(false);
    expect((rb as { error: unknown }).error).toMatchObject({ name: 'Refused', code: 'FAILED_PRECONDITION' });
    expect(b.runs).toBe(0);
    expect(await effects()).toEqual(['tx-1/Try', `tx-1/${first}`]);
  });

  it('lockTimeoutMs: a call waiting too long on a concurrent one fails retryably; its retry replays the row', async () => {
    const impatient = new PgBarrier(pool, { table, lockTimeoutMs: 100 });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const t = effect('Try', { before: () => released, data: () => 'r-1' });
    const first = barrier.run(key, 'Try', t);
    while (t.runs === 0) await sleep(1);
    const err = await impatient.run(key, 'Try', t).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '55P03' }); // lock_not_available
    expect(err).not.toBeInstanceOf(Refused);
    release();
    expect((await first).outcome).toBe('executed');
    expect(await impatient.run(key, 'Try', t)).toEqual({ outcome: 'duplicate', response: resp('Try done', 'r-1') });
    expect(t.runs).toBe(1);
    expect(() => new PgBarrier(pool, { lockTimeoutMs: -1 })).toThrow(RangeError);
  });
});

describe('PgBarrier with serveParticipant', () => {
  const silent = pino({ level: 'silent' });
  let p: Participant | undefined;
  let client: grpc.Client | undefined;
  afterEach(async () => {
    client?.close();
    await p?.shutdown(100);
  });

  it('async handlers write through ctx.tx (a PoolClient); repeats replay, null compensation and anti-hanging over gRPC', async () => {
    let tries = 0;
    p = await serveParticipant<pg.PoolClient>({
      address: '127.0.0.1:0',
      logger: silent,
      barrier,
      tcc: {
        try: async (ctx) => {
          tries++;
          await ctx.tx.query(`INSERT INTO holds VALUES ($1)`, [ctx.uid]);
          return { data: { hold: ctx.uid, n: tries } };
        },
        confirm: async (ctx) => {
          await ctx.tx.query(`DELETE FROM holds WHERE uid = $1`, [ctx.uid]);
        },
        cancel: async (ctx) => {
          await ctx.tx.query(`DELETE FROM holds WHERE uid = $1`, [ctx.uid]);
        },
      },
    });
    const c = tccClient(p.port);
    client = c;
    const a = await callOk(c, 'try', request({ transactionUid: 't1' }));
    const b = await callOk(c, 'try', request({ transactionUid: 't1', attempt: 2 }));
    expect(b.data.toString()).toBe(a.data.toString());
    expect(JSON.parse(a.data.toString())).toEqual({ hold: 't1', n: 1 });
    await callOk(c, 'confirm', request({ transactionUid: 't1' }));
    expect(tries).toBe(1);

    const nc = await callOk(c, 'cancel', request({ transactionUid: 't2' }));
    expect(nc.message).toMatch(/null compensation/);
    const late = await callErr(c, 'try', request({ transactionUid: 't2' }));
    expect(late.code).toBe(grpc.status.ABORTED);
    expect(late.details).toMatch(/anti-hanging/);
    expect((await callErr(c, 'confirm', request({ transactionUid: 't3' }))).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(tries).toBe(1);
    expect((await pool.query(`SELECT uid FROM holds`)).rows).toEqual([]);
  });
});

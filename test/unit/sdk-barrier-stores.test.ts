// One barrier suite, run against every store: SQLite (in memory) and a real
// PostgreSQL server started by this file (test/support/postgres.ts). The rules
// must behave identically; store-specific tests are in sdk-barrier.test.ts
// (SQLite) and sdk-barrier-pg.test.ts (PostgreSQL, incl. concurrency).
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  applyBarrierRulesAsync,
  Refused,
  type AsyncBarrierStore,
  type BarrierRow,
  type BarrierKey,
  type BarrierMethod,
  type BarrierResponse,
  type BarrierResult,
} from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { PgBarrier } from '../../sdk/typescript/src/pg.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';

// A real server on a busy CI machine: generous limits (the tests take milliseconds each when idle).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 90_000 });

const key = { uid: 'tx-1', branch: 'inventory' };
const resp = (message: string, data = ''): BarrierResponse => ({ message, data: Buffer.from(data) });

/** What a test handler does: writes an effect row through the transaction, then returns or throws. */
interface Behaviour {
  method: BarrierMethod;
  /** Response data for this run (n = 1 for the first run). */
  data?: (n: number) => string;
  /** Thrown after the effect was written, while it returns an Error. */
  fail?: () => Error | undefined;
}
interface Handler {
  runs: number;
}

/** A barrier under test with its database, behind one interface. */
interface Harness {
  run(key: BarrierKey, method: BarrierMethod, h: Handler): Promise<BarrierResult>;
  handler(b: Behaviour): Handler;
  effects(): Promise<string[]>;
  rows(): Promise<Array<{ uid: string; branch: string; method: string; origin: string }>>;
  cleanup(olderThanMs?: number): Promise<number>;
  advance(ms: number): void;
  close(): Promise<void>;
}

function respond(b: Behaviour, n: number): BarrierResponse {
  const err = b.fail?.();
  if (err) throw err;
  return resp(`${b.method} done`, b.data ? b.data(n) : '');
}

function sqliteHarness(): Harness {
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE effects (uid TEXT, method TEXT, n INTEGER)`);
  let clock = 1_000_000;
  const barrier = new SqliteBarrier(db, { now: () => clock });
  const fns = new WeakMap<Handler, (tx: Database.Database) => BarrierResponse>();
  return {
    run: (k, m, h) => barrier.run(k, m, fns.get(h)!),
    handler(b) {
      const h: Handler = { runs: 0 };
      fns.set(h, (tx) => {
        h.runs++;
        tx.prepare(`INSERT INTO effects VALUES (?, ?, ?)`).run(key.uid, b.method, h.runs);
        return respond(b, h.runs);
      });
      return h;
    },
    effects: async () => db.prepare(`SELECT method FROM effects ORDER BY rowid`).all().map((r) => (r as { method: string }).method),
    rows: async () =>
      db.prepare(`SELECT uid, branch, method, origin FROM kubetx_barrier ORDER BY uid, branch, method`).all() as Array<{
        uid: string;
        branch: string;
        method: string;
        origin: string;
      }>,
    cleanup: async (ms) => barrier.cleanup(ms),
    advance: (ms) => void (clock += ms),
    close: async () => {
      db.close();
    },
  };
}

async function pgHarness(pool: pg.Pool): Promise<Harness> {
  await pool.query(`DROP TABLE IF EXISTS kubetx_barrier, effects`);
  await pool.query(`CREATE TABLE effects (seq serial PRIMARY KEY, uid text, method text, n integer)`);
  let clock = 1_000_000;
  const barrier = new PgBarrier(pool, { now: () => clock });
  const fns = new WeakMap<Handler, (tx: pg.PoolClient) => Promise<BarrierResponse>>();
  return {
    run: (k, m, h) => barrier.run(k, m, fns.get(h)!),
    handler(b) {
      const h: Handler = { runs: 0 };
      fns.set(h, async (tx) => {
        h.runs++;
        const n = h.runs;
        await tx.query(`INSERT INTO effects (uid, method, n) VALUES ($1, $2, $3)`, [key.uid, b.method, n]);
        await new Promise((r) => setImmediate(r)); // really asynchronous, still inside the transaction
        return respond(b, n);
      });
      return h;
    },
    effects: async () => (await pool.query<{ method: string }>(`SELECT method FROM effects ORDER BY seq`)).rows.map((r) => r.method),
    rows: async () => {
      await barrier.init();
      return (
        await pool.query<{ uid: string; branch: string; method: string; origin: string }>(
          `SELECT uid, branch, method, origin FROM kubetx_barrier ORDER BY uid COLLATE "C", branch COLLATE "C", method COLLATE "C"`,
        )
      ).rows;
    },
    cleanup: (ms) => barrier.cleanup(ms),
    advance: (ms) => void (clock += ms),
    close: async () => undefined,
  };
}

let server: PostgresServer | undefined;
let pool: pg.Pool | undefined;

const stores: Array<{ name: string; setup?: () => Promise<void>; teardown?: () => Promise<void>; make: () => Promise<Harness> }> = [
  { name: 'SqliteBarrier', make: async () => sqliteHarness() },
  {
    name: 'PgBarrier',
    setup: async () => {
      server = await startPostgres();
      pool = new pg.Pool({ connectionString: server.url, max: 5 });
    },
    teardown: () => stopPostgres(server, [pool]),
    make: () => {
      if (!pool) throw new Error('PostgreSQL test server did not start (see the beforeAll error)');
      return pgHarness(pool);
    },
  },
];

describe.each(stores)('$name (shared barrier suite)', ({ setup, teardown, make }) => {
  let h: Harness;
  if (setup) beforeAll(setup, 90_000);
  if (teardown) afterAll(teardown, 30_000);
  beforeEach(async () => {
    h = await make();
  });
  afterEach(async () => {
    await h?.close();
  });

  it('runs a Try once; a repeated Try returns the same message and data without running again', async () => {
    const t = h.handler({ method: 'Try', data: (n) => `{"reservationId":"r-${n}"}` });
    const first = await h.run(key, 'Try', t);
    const second = await h.run(key, 'Try', t);
    const third = await h.run(key, 'Try', t);
    expect(first.outcome).toBe('executed');
    expect(first.response.data.toString()).toBe('{"reservationId":"r-1"}');
    expect([second.outcome, third.outcome]).toEqual(['duplicate', 'duplicate']);
    expect(second.response.message).toBe('Try done');
    expect(second.response.data.toString()).toBe('{"reservationId":"r-1"}');
    expect(third.response).toEqual(first.response);
    expect(t.runs).toBe(1);
    expect(await h.effects()).toEqual(['Try']);
  });

  it('idempotency: Confirm and Cancel after a Try each run once', async () => {
    await h.run(key, 'Try', h.handler({ method: 'Try' }));
    const c = h.handler({ method: 'Confirm' });
    expect((await h.run(key, 'Confirm', c)).outcome).toBe('executed');
    expect((await h.run(key, 'Confirm', c)).outcome).toBe('duplicate');
    expect(c.runs).toBe(1);

    const k2 = { uid: 'tx-2', branch: 'inventory' };
    await h.run(k2, 'Try', h.handler({ method: 'Try' }));
    const x = h.handler({ method: 'Cancel' });
    expect((await h.run(k2, 'Cancel', x)).outcome).toBe('executed');
    expect((await h.run(k2, 'Cancel', x)).outcome).toBe('duplicate');
    expect(x.runs).toBe(1);
    expect(await h.effects()).toEqual(['Try', 'Confirm', 'Try', 'Cancel']);
  });

  it('null compensation: Cancel without Try answers OK, runs nothing, and writes a blocker', async () => {
    const c = h.handler({ method: 'Cancel' });
    const r = await h.run(key, 'Cancel', c);
    expect(r.outcome).toBe('null-compensation');
    expect(r.response.message).toMatch(/null compensation/);
    expect(r.response.data.length).toBe(0);
    expect(c.runs).toBe(0);
    expect(await h.rows()).toEqual([
      { uid: 'tx-1', branch: 'inventory', method: 'Cancel', origin: 'call' },
      { uid: 'tx-1', branch: 'inventory', method: 'Try', origin: 'blocker' },
    ]);
    const again = await h.run(key, 'Cancel', c);
    expect(again.outcome).toBe('duplicate');
    expect(again.response.message).toBe(r.response.message);
    expect(c.runs).toBe(0);
    expect(await h.effects()).toEqual([]);
  });

  it('anti-hanging: a Try after its Cancel is refused (ABORTED) without running, every time', async () => {
    await h.run(key, 'Cancel', h.handler({ method: 'Cancel' }));
    const t = h.handler({ method: 'Try' });
    const err = await h.run(key, 'Try', t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Refused);
    expect((err as Refused).code).toBe('ABORTED');
    expect((err as Refused).message).toMatch(/anti-hanging/);
    await expect(h.run(key, 'Try', t)).rejects.toBeInstanceOf(Refused);
    expect(t.runs).toBe(0);
    expect(await h.effects()).toEqual([]);
  });

  it('Saga: Execute/Compensate once; Compensate before Execute is null and blocks the Execute', async () => {
    const e = h.handler({ method: 'Execute', data: () => 'x' });
    const c = h.handler({ method: 'Compensate' });
    await h.run(key, 'Execute', e);
    expect((await h.run(key, 'Execute', e)).response.data.toString()).toBe('x');
    await h.run(key, 'Compensate', c);
    await h.run(key, 'Compensate', c);
    expect([e.runs, c.runs]).toEqual([1, 1]);

    const k2 = { uid: 'tx-2', branch: 'b' };
    expect((await h.run(k2, 'Compensate', c)).outcome).toBe('null-compensation');
    await expect(h.run(k2, 'Execute', e)).rejects.toMatchObject({ code: 'ABORTED' });
    expect([e.runs, c.runs]).toEqual([1, 1]);
  });

  it('Deliver is deduplicated', async () => {
    const d = h.handler({ method: 'Deliver' });
    await h.run(key, 'Deliver', d);
    expect((await h.run(key, 'Deliver', d)).outcome).toBe('duplicate');
    expect(d.runs).toBe(1);
  });

  it('other branches and transactions are independent', async () => {
    await h.run(key, 'Cancel', h.handler({ method: 'Cancel' }));
    const t = h.handler({ method: 'Try' });
    await h.run({ uid: 'tx-1', branch: 'credit' }, 'Try', t);
    await h.run({ uid: 'tx-2', branch: 'inventory' }, 'Try', t);
    expect(t.runs).toBe(2);
  });

  it('rollback: when the handler throws, its effect and the barrier row are rolled back; the retry runs', async () => {
    let fail = true;
    const t = h.handler({ method: 'Try', data: (n) => `run-${n}`, fail: () => (fail ? new Error('disk on fire') : undefined) });
    await expect(h.run(key, 'Try', t)).rejects.toThrow('disk on fire');
    expect(t.runs).toBe(1);
    expect(await h.effects()).toEqual([]);
    expect(await h.rows()).toEqual([]);
    fail = false;
    const r = await h.run(key, 'Try', t);
    expect(r.outcome).toBe('executed');
    expect(r.response.data.toString()).toBe('run-2');
    expect(await h.effects()).toEqual(['Try']);
  });

  it('a Try refused by its handler records nothing, so its Cancel is a null compensation', async () => {
    const t = h.handler({ method: 'Try', fail: () => new Refused('insufficient stock') });
    await expect(h.run(key, 'Try', t)).rejects.toThrow('insufficient stock');
    const c = h.handler({ method: 'Cancel' });
    expect((await h.run(key, 'Cancel', c)).outcome).toBe('null-compensation');
    expect(c.runs).toBe(0);
    expect(await h.effects()).toEqual([]);
  });

  it('protocol violations are FAILED_PRECONDITION: Confirm without Try, Confirm after Cancel, Cancel after Confirm', async () => {
    const c = h.handler({ method: 'Confirm' });
    await expect(h.run(key, 'Confirm', c)).rejects.toMatchObject({ name: 'Refused', code: 'FAILED_PRECONDITION' });
    expect(await h.rows()).toEqual([]); // the refusal recorded nothing

    await h.run(key, 'Cancel', h.handler({ method: 'Cancel' })); // null compensation: Try blocker
    await expect(h.run(key, 'Confirm', c)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });

    const k2 = { uid: 'tx-2', branch: 'inventory' };
    await h.run(k2, 'Try', h.handler({ method: 'Try' }));
    await h.run(k2, 'Confirm', c);
    const x = h.handler({ method: 'Cancel' });
    await expect(h.run(k2, 'Cancel', x)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect([c.runs, x.runs]).toEqual([1, 0]);
  });

  it('needs a uid and a branch', async () => {
    await expect(h.run({ uid: '', branch: 'b' }, 'Try', h.handler({ method: 'Try' }))).rejects.toThrow(/uid/);
    await expect(h.run({ uid: 'u', branch: '' }, 'Try', h.handler({ method: 'Try' }))).rejects.toThrow(/branch/);
  });

  it('cleanup deletes whole transactions whose newest row is older than the age, never part of one', async () => {
    await h.run({ uid: 'old', branch: 'a' }, 'Try', h.handler({ method: 'Try' }));
    await h.run({ uid: 'old', branch: 'a' }, 'Confirm', h.handler({ method: 'Confirm' }));
    await h.run({ uid: 'old', branch: 'b' }, 'Cancel', h.handler({ method: 'Cancel' }));
    await h.run({ uid: 'mixed', branch: 'a' }, 'Try', h.handler({ method: 'Try' }));
    h.advance(10_000);
    await h.run({ uid: 'mixed', branch: 'a' }, 'Cancel', h.handler({ method: 'Cancel' }));
    await h.run({ uid: 'new', branch: 'a' }, 'Cancel', h.handler({ method: 'Cancel' }));
    h.advance(1_000);
    // old: 4 rows (Try, Confirm, and branch b's Cancel + blocker); mixed keeps its old Try because of its recent Cancel.
    expect(await h.cleanup(5_000)).toBe(4);
    const left = (await h.rows()).map((r) => `${r.uid}/${r.method}`).sort();
    expect(left).toEqual(['mixed/Cancel', 'mixed/Try', 'new/Cancel', 'new/Try']);
    expect(await h.cleanup(11_000)).toBe(0); // the boundary: mixed's Try is 11 s old but its Cancel only 1 s
    expect(await h.cleanup()).toBe(0); // default 7 days
    h.advance(8 * 24 * 3600 * 1000);
    expect(await h.cleanup()).toBe(4);
    expect(await h.rows()).toEqual([]);
    await expect(h.cleanup(-1)).rejects.toBeInstanceOf(RangeError);
  });

  it('after cleanup the key is fresh again (why the age must exceed the retry horizon)', async () => {
    await h.run(key, 'Cancel', h.handler({ method: 'Cancel' }));
    h.advance(10_000);
    expect(await h.cleanup(5_000)).toBe(2);
    const t = h.handler({ method: 'Try' });
    expect((await h.run(key, 'Try', t)).outcome).toBe('executed'); // a late Try is no longer blocked
  });
});

describe('applyBarrierRulesAsync (pure)', () => {
  function asyncMapStore(): AsyncBarrierStore & { rows: Map<string, BarrierRow> } {
    const rows = new Map<string, BarrierRow>();
    return {
      rows,
      get: async (m) => rows.get(m),
      insert: async (m, origin, r) => {
        if (rows.has(m)) return false;
        rows.set(m, { origin, ...r });
        return true;
      },
    };
  }

  it('applies the rules over an async store (claim defaults to get)', async () => {
    const s = asyncMapStore();
    expect((await applyBarrierRulesAsync(s, 'Cancel', () => resp('c'))).outcome).toBe('null-compensation');
    await expect(applyBarrierRulesAsync(s, 'Try', async () => resp('t'))).rejects.toBeInstanceOf(Refused);
    const s2 = asyncMapStore();
    expect((await applyBarrierRulesAsync(s2, 'Try', async () => resp('t', 'd'))).outcome).toBe('executed');
    expect((await applyBarrierRulesAsync(s2, 'Try', async () => resp('other'))).response).toEqual(resp('t', 'd'));
  });

  it('a blocker insert that conflicts means the Try committed meanwhile: the Cancel compensates', async () => {
    const s = asyncMapStore();
    let looked = 0;
    const racing: AsyncBarrierStore = {
      ...s,
      // The first look misses the in-flight Try, which then commits before the blocker insert.
      get: async (m) => {
        if (m === 'Try' && looked++ === 0) {
          const row = s.rows.get('Try');
          s.rows.set('Try', { origin: 'call', message: 'Try done', data: Buffer.alloc(0) });
          return row;
        }
        return s.get(m);
      },
    };
    let ran = 0;
    const r = await applyBarrierRulesAsync(racing, 'Cancel', () => (ran++, resp('compensated')));
    expect(r.outcome).toBe('executed');
    expect(ran).toBe(1);
    expect(s.rows.get('Try')?.origin).toBe('call');
  });
});

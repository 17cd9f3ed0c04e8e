import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  applyBarrierRules,
  Refused,
  type BarrierMethod,
  type BarrierResponse,
  type BarrierRow,
  type BarrierStore,
} from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';

const key = { uid: 'tx-1', branch: 'inventory' };
const resp = (message: string, data = ''): BarrierResponse => ({ message, data: Buffer.from(data) });

describe('SqliteBarrier', () => {
  let db: Database.Database;
  let barrier: SqliteBarrier;
  let clock: number;

  beforeEach(() => {
    db = new Database(':memory:');
    db.exec(`CREATE TABLE effects (uid TEXT, method TEXT, n INTEGER)`);
    clock = 1_000_000;
    barrier = new SqliteBarrier(db, { now: () => clock });
  });
  afterEach(() => db.close());

  /** A handler that records its effect in `effects` and counts its runs. */
  function effect(method: BarrierMethod, data = '') {
    const h = (tx: Database.Database) => {
      h.runs++;
      tx.prepare(`INSERT INTO effects VALUES (?, ?, ?)`).run(key.uid, method, h.runs);
      return resp(`${method} done`, data);
    };
    h.runs = 0;
    return h;
  }
  const effects = () => db.prepare(`SELECT method FROM effects ORDER BY rowid`).all().map((r) => (r as { method: string }).method);
  const rows = () =>
    db.prepare(`SELECT uid, branch, method, origin FROM kubetx_barrier ORDER BY method`).all() as Array<{ uid: string; branch: string; method: string; origin: string }>;

  it('creates kubetx_barrier with the documented columns', () => {
    const cols = (db.prepare(`PRAGMA table_info(kubetx_barrier)`).all() as Array<{ name: string; pk: number }>).map((c) => [c.name, c.pk]);
    expect(cols).toEqual([
      ['uid', 1],
      ['branch', 2],
      ['method', 3],
      ['origin', 0],
      ['created_at', 0],
      ['message', 0],
      ['data', 0],
    ]);
  });

  it('runs a Try once and answers repeats with the stored message and data', async () => {
    const h = effect('Try', '{"reservationId":"r-1"}');
    const first = await barrier.run(key, 'Try', h);
    const second = await barrier.run(key, 'Try', h);
    expect(first.outcome).toBe('executed');
    expect(second.outcome).toBe('duplicate');
    expect(second.response.message).toBe('Try done');
    expect(second.response.data.toString()).toBe('{"reservationId":"r-1"}');
    expect(h.runs).toBe(1);
    expect(effects()).toEqual(['Try']);
  });

  it('runs Confirm once after Try', async () => {
    await barrier.run(key, 'Try', effect('Try'));
    const c = effect('Confirm');
    expect((await barrier.run(key, 'Confirm', c)).outcome).toBe('executed');
    expect((await barrier.run(key, 'Confirm', c)).outcome).toBe('duplicate');
    expect(c.runs).toBe(1);
    expect(effects()).toEqual(['Try', 'Confirm']);
  });

  it('runs Cancel once after Try', async () => {
    await barrier.run(key, 'Try', effect('Try'));
    const c = effect('Cancel');
    await barrier.run(key, 'Cancel', c);
    await barrier.run(key, 'Cancel', c);
    expect(c.runs).toBe(1);
    expect(effects()).toEqual(['Try', 'Cancel']);
  });

  it('null compensation: Cancel without Try answers OK, runs nothing, and blocks the Try', async () => {
    const c = effect('Cancel');
    const r = await barrier.run(key, 'Cancel', c);
    expect(r.outcome).toBe('null-compensation');
    expect(r.response.message).toMatch(/null compensation/);
    expect(c.runs).toBe(0);
    expect(rows()).toEqual([
      { uid: 'tx-1', branch: 'inventory', method: 'Cancel', origin: 'call' },
      { uid: 'tx-1', branch: 'inventory', method: 'Try', origin: 'blocker' },
    ]);
    // The Cancel repeated: still OK, still nothing run.
    expect((await barrier.run(key, 'Cancel', c)).outcome).toBe('duplicate');
    expect(c.runs).toBe(0);
    expect(effects()).toEqual([]);
  });

  it('anti-hanging: a Try after its Cancel is refused without running', async () => {
    await barrier.run(key, 'Cancel', effect('Cancel'));
    const t = effect('Try');
    const err = await barrier.run(key, 'Try', t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Refused);
    expect((err as Refused).code).toBe('ABORTED');
    expect((err as Refused).message).toMatch(/anti-hanging/);
    expect(t.runs).toBe(0);
    expect(effects()).toEqual([]);
    // Every repeat is refused too.
    await expect(barrier.run(key, 'Try', t)).rejects.toBeInstanceOf(Refused);
  });

  it('other branches and transactions are independent', async () => {
    await barrier.run(key, 'Cancel', effect('Cancel'));
    const t = effect('Try');
    await barrier.run({ uid: 'tx-1', branch: 'credit' }, 'Try', t);
    await barrier.run({ uid: 'tx-2', branch: 'inventory' }, 'Try', t);
    expect(t.runs).toBe(2);
  });

  it('rolls back the effect and records nothing when the handler throws; the retry runs', async () => {
    let fail = true;
    const h = (tx: Database.Database) => {
      tx.prepare(`INSERT INTO effects VALUES ('tx-1', 'Try', 1)`).run();
      if (fail) throw new Error('disk on fire');
      return resp('ok');
    };
    await expect(barrier.run(key, 'Try', h)).rejects.toThrow('disk on fire');
    expect(effects()).toEqual([]);
    expect(rows()).toEqual([]);
    fail = false;
    expect((await barrier.run(key, 'Try', h)).outcome).toBe('executed');
    expect(effects()).toEqual(['Try']);
  });

  it('a Try refused by its handler records nothing, so its Cancel is a null compensation', async () => {
    const t = () => {
      throw new Refused('insufficient stock');
    };
    await expect(barrier.run(key, 'Try', t)).rejects.toThrow('insufficient stock');
    const c = effect('Cancel');
    expect((await barrier.run(key, 'Cancel', c)).outcome).toBe('null-compensation');
    expect(c.runs).toBe(0);
  });

  it('Confirm without a Try, after a Cancel, or Cancel after Confirm are protocol violations', async () => {
    const c = effect('Confirm');
    const e1 = (await barrier.run(key, 'Confirm', c).catch((e: unknown) => e)) as Refused;
    expect(e1).toBeInstanceOf(Refused);
    expect(e1.code).toBe('FAILED_PRECONDITION');

    await barrier.run(key, 'Cancel', effect('Cancel')); // null compensation: Try blocker
    await expect(barrier.run(key, 'Confirm', c)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });

    const k2 = { uid: 'tx-2', branch: 'inventory' };
    await barrier.run(k2, 'Try', effect('Try'));
    await barrier.run(k2, 'Confirm', c);
    await expect(barrier.run(k2, 'Cancel', effect('Cancel'))).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(c.runs).toBe(1);
  });

  it('Saga: Execute once, Compensate once, Compensate before Execute is null and blocks Execute', async () => {
    const e = effect('Execute', 'x');
    await barrier.run(key, 'Execute', e);
    expect((await barrier.run(key, 'Execute', e)).response.data.toString()).toBe('x');
    const c = effect('Compensate');
    await barrier.run(key, 'Compensate', c);
    await barrier.run(key, 'Compensate', c);
    expect([e.runs, c.runs]).toEqual([1, 1]);

    const k2 = { uid: 'tx-2', branch: 'b' };
    expect((await barrier.run(k2, 'Compensate', c)).outcome).toBe('null-compensation');
    await expect(barrier.run(k2, 'Execute', e)).rejects.toBeInstanceOf(Refused);
    expect([e.runs, c.runs]).toEqual([1, 1]);
  });

  it('Deliver is deduplicated', async () => {
    const d = effect('Deliver');
    await barrier.run(key, 'Deliver', d);
    expect((await barrier.run(key, 'Deliver', d)).outcome).toBe('duplicate');
    expect(d.runs).toBe(1);
  });

  it('rejects asynchronous handlers and rolls back what they wrote synchronously', async () => {
    const h = async (tx: Database.Database) => {
      tx.prepare(`INSERT INTO effects VALUES ('tx-1', 'Try', 1)`).run();
      return resp('ok');
    };
    await expect(barrier.run(key, 'Try', h)).rejects.toThrow(/must be synchronous/);
    expect(effects()).toEqual([]);
    expect(rows()).toEqual([]);
  });

  it('needs a uid and a branch', async () => {
    await expect(barrier.run({ uid: '', branch: 'b' }, 'Try', effect('Try'))).rejects.toThrow(/uid/);
  });

  it('cleanup deletes whole transactions whose newest row is older than the age', async () => {
    await barrier.run({ uid: 'old', branch: 'a' }, 'Try', effect('Try'));
    await barrier.run({ uid: 'old', branch: 'a' }, 'Confirm', effect('Confirm'));
    await barrier.run({ uid: 'mixed', branch: 'a' }, 'Try', effect('Try'));
    clock += 10_000;
    await barrier.run({ uid: 'mixed', branch: 'a' }, 'Cancel', effect('Cancel'));
    await barrier.run({ uid: 'new', branch: 'a' }, 'Cancel', effect('Cancel'));
    clock += 1_000;
    expect(barrier.cleanup(5_000)).toBe(2); // old: Try + Confirm; mixed keeps its old Try because of its recent Cancel
    const uids = rows().map((r) => `${r.uid}/${r.method}`).sort();
    expect(uids).toEqual(['mixed/Cancel', 'mixed/Try', 'new/Cancel', 'new/Try']);
    expect(barrier.cleanup()).toBe(0); // default 7 days
    clock += 8 * 24 * 3600 * 1000;
    expect(barrier.cleanup()).toBe(4);
  });

  it('keeps its rows across connections (same file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubetx-barrier-'));
    const path = join(dir, 'p.db');
    const a = new Database(path);
    const b = new Database(path);
    try {
      const ba = new SqliteBarrier(a);
      const bb = new SqliteBarrier(b);
      let runs = 0;
      await ba.run(key, 'Cancel', () => resp('x'));
      await expect(
        bb.run(key, 'Try', () => {
          runs++;
          return resp('t');
        }),
      ).rejects.toBeInstanceOf(Refused);
      expect(runs).toBe(0);
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('applyBarrierRules (pure)', () => {
  function mapStore(): BarrierStore & { rows: Map<string, BarrierRow> } {
    const rows = new Map<string, BarrierRow>();
    return {
      rows,
      get: (m) => rows.get(m),
      insert: (m, origin, r) => {
        if (rows.has(m)) throw new Error(`duplicate ${m}`);
        rows.set(m, { origin, ...r });
      },
    };
  }

  it('applies the same rules to any synchronous store', () => {
    const s = mapStore();
    expect(applyBarrierRules(s, 'Cancel', () => resp('c')).outcome).toBe('null-compensation');
    expect(() => applyBarrierRules(s, 'Try', () => resp('t'))).toThrow(Refused);
    expect([...s.rows.keys()].sort()).toEqual(['Cancel', 'Try']);

    const s2 = mapStore();
    expect(applyBarrierRules(s2, 'Try', () => resp('t', 'd')).outcome).toBe('executed');
    expect(applyBarrierRules(s2, 'Try', () => resp('other')).response).toEqual(resp('t', 'd'));
    expect(applyBarrierRules(s2, 'Cancel', () => resp('c')).outcome).toBe('executed');
  });
});

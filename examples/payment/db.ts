/**
 * The four services' SQLite databases: schema and seed data (seed 000's numbers).
 *
 *   order      orders 1001..1005 of user 7, UNPAID
 *   inventory  sku A-1: stock 100, frozen 0, sold 0
 *   credit     user 7: credit 1190, prepare_add_credit 0
 *   warehouse  no delivery notes
 *
 * Each file also holds the SDK's kubetx_barrier table and this example's
 * `faults` table (faults.ts). A file remembers which service it belongs to.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';

export type ServiceName = 'order' | 'inventory' | 'credit' | 'warehouse';
export const SERVICES: readonly ServiceName[] = ['order', 'inventory', 'credit', 'warehouse'];

/** Ports used by the manifests (one per service, so all four can run on one host). */
export const DEFAULT_PORTS: Record<ServiceName, number> = { order: 50051, inventory: 50052, credit: 50053, warehouse: 50054 };

export const SEED = {
  orders: [1001, 1002, 1003, 1004, 1005],
  userId: 7,
  sku: 'A-1',
  stock: 100,
  credit: 1190,
} as const;

export function isServiceName(s: string): s is ServiceName {
  return (SERVICES as readonly string[]).includes(s);
}

/** Where a service's database lives inside a --db-dir. */
export function dbPathIn(dir: string, service: ServiceName): string {
  return join(dir, `${service}.db`);
}

const SCHEMA: Record<ServiceName, string> = {
  order: `CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('UNPAID', 'UPDATING', 'PAID', 'CANCELED')),
    updated_at INTEGER NOT NULL
  )`,
  inventory: `CREATE TABLE IF NOT EXISTS items (
    sku TEXT PRIMARY KEY,
    stock INTEGER NOT NULL CHECK (stock >= 0),
    frozen INTEGER NOT NULL CHECK (frozen >= 0),
    sold INTEGER NOT NULL CHECK (sold >= 0)
  );
  CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    branch TEXT NOT NULL,
    order_id INTEGER,
    sku TEXT NOT NULL,
    qty INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('RESERVED', 'SOLD', 'RELEASED')),
    created_at INTEGER NOT NULL
  )`,
  credit: `CREATE TABLE IF NOT EXISTS accounts (
    user_id INTEGER PRIMARY KEY,
    credit INTEGER NOT NULL,
    prepare_add_credit INTEGER NOT NULL CHECK (prepare_add_credit >= 0)
  )`,
  warehouse: `CREATE TABLE IF NOT EXISTS delivery_notes (
    id TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    branch TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    sku TEXT,
    qty INTEGER,
    state TEXT NOT NULL CHECK (state IN ('UNKNOWN', 'CREATED', 'CANCELED')),
    created_at INTEGER NOT NULL
  )`,
};

function seed(db: Database.Database, service: ServiceName): void {
  const now = Date.now();
  switch (service) {
    case 'order': {
      const ins = db.prepare(`INSERT INTO orders (id, user_id, status, updated_at) VALUES (?, ?, 'UNPAID', ?)`);
      for (const id of SEED.orders) ins.run(id, SEED.userId, now);
      break;
    }
    case 'inventory':
      db.prepare(`INSERT INTO items (sku, stock, frozen, sold) VALUES (?, ?, 0, 0)`).run(SEED.sku, SEED.stock);
      break;
    case 'credit':
      db.prepare(`INSERT INTO accounts (user_id, credit, prepare_add_credit) VALUES (?, ?, 0)`).run(SEED.userId, SEED.credit);
      break;
    case 'warehouse':
      break;
  }
}

export interface ServiceDb {
  service: ServiceName;
  path: string;
  db: Database.Database;
  barrier: SqliteBarrier;
}

/** Opens (creating and seeding on first use) a service's database. */
export function openServiceDb(service: ServiceName, path: string): ServiceDb {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    const owner = db.prepare(`SELECT value FROM meta WHERE key = 'service'`).get() as { value: string } | undefined;
    if (owner && owner.value !== service) {
      throw new Error(`${path} belongs to the ${owner.value} service, not ${service}`);
    }
    db.exec(SCHEMA[service]);
    ensureFaultTable(db);
    if (!owner) {
      db.prepare(`INSERT INTO meta (key, value) VALUES ('service', ?)`).run(service);
      seed(db, service);
    }
  }).immediate();
  return { service, path, db, barrier: new SqliteBarrier(db) };
}

/** The `faults` table (see faults.ts); lives here so every service database has it. */
export function ensureFaultTable(db: Database.Database): void {
  const existing = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'faults'`).get() as { sql: string } | undefined;
  // Files made before Saga support have a CHECK without Execute/Compensate: rebuild the table, keeping its switches.
  const outdated = existing !== undefined && !existing.sql.includes("'Compensate'");
  db.transaction(() => {
    if (outdated) db.exec(`ALTER TABLE faults RENAME TO faults_old`);
    db.exec(`CREATE TABLE IF NOT EXISTS faults (
      method TEXT PRIMARY KEY CHECK (method IN ('Try', 'Confirm', 'Cancel', 'Execute', 'Compensate')),
      mode TEXT NOT NULL CHECK (mode IN ('refuse', 'fail', 'hang', 'crash')),
      remaining INTEGER,
      after INTEGER NOT NULL DEFAULT 0,
      message TEXT
    )`);
    if (outdated) db.exec(`INSERT INTO faults SELECT method, mode, remaining, after, message FROM faults_old; DROP TABLE faults_old`);
  })();
}

/** Opens an existing database for reading or for the fault switches, from another process or connection. */
export function openExisting(path: string, readonly = false): Database.Database {
  const db = new Database(path, { fileMustExist: true, readonly });
  db.pragma('busy_timeout = 5000');
  return db;
}

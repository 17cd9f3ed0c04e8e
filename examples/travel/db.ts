/**
 * The travel example's three SQLite databases: schema, seed and queries.
 *
 *   flight  flight KX101 LIS→OPO: 3 seats
 *   hotel   Harbour Inn, Porto: 2 rooms
 *   car     cars at OPO airport: 1
 *
 * Each file holds its service's inventory (`availability`), its bookings, the
 * SDK's kubetx_barrier table, a `calls` log (every call as it arrives and
 * leaves, with a process-wide monotonic clock, so the order of calls across
 * services can be checked) and a `faults` table (see faults in services.ts).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';

export type TravelService = 'flight' | 'hotel' | 'car';
export const TRAVEL_SERVICES: readonly TravelService[] = ['flight', 'hotel', 'car'];
export const TRAVEL_PORTS: Record<TravelService, number> = { flight: 50071, hotel: 50072, car: 50073 };

/** What each service sells, and how many at the start. */
export const TRAVEL_SEED: Record<TravelService, { resource: string; free: number }> = {
  flight: { resource: 'KX101', free: 3 },
  hotel: { resource: 'Harbour Inn', free: 2 },
  car: { resource: 'OPO', free: 1 },
};

export function isTravelService(s: string): s is TravelService {
  return (TRAVEL_SERVICES as readonly string[]).includes(s);
}

export function travelDbPathIn(dir: string, service: TravelService): string {
  return join(dir, `${service}.db`);
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (service TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS availability (resource TEXT PRIMARY KEY, free INTEGER NOT NULL CHECK (free >= 0));
  CREATE TABLE IF NOT EXISTS bookings (
    uid TEXT NOT NULL,
    branch TEXT NOT NULL,
    traveller TEXT NOT NULL,
    resource TEXT NOT NULL,
    qty INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('BOOKED', 'CANCELLED')),
    PRIMARY KEY (uid, branch)
  );
  CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('start', 'end')),
    uid TEXT NOT NULL,
    branch TEXT NOT NULL,
    method TEXT NOT NULL,
    outcome TEXT
  );
  CREATE TABLE IF NOT EXISTS faults (
    method TEXT PRIMARY KEY CHECK (method IN ('Execute', 'Compensate')),
    mode TEXT NOT NULL CHECK (mode IN ('refuse', 'fail')),
    remaining INTEGER
  );
`;

export interface TravelDb {
  service: TravelService;
  db: Database.Database;
  barrier: SqliteBarrier;
}

/** Opens (creating and seeding if new) a service's database. */
export function openTravelDb(service: TravelService, path: string): TravelDb {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  const meta = db.prepare(`SELECT service FROM meta`).get() as { service: string } | undefined;
  if (!meta) {
    db.transaction(() => {
      db.prepare(`INSERT INTO meta (service) VALUES (?)`).run(service);
      const seed = TRAVEL_SEED[service];
      db.prepare(`INSERT INTO availability (resource, free) VALUES (?, ?)`).run(seed.resource, seed.free);
    })();
  } else if (meta.service !== service) {
    db.close();
    throw new Error(`${path} belongs to the ${meta.service} service, not ${service}`);
  }
  return { service, db, barrier: new SqliteBarrier(db) };
}

export interface CallRecord {
  at: number;
  event: 'start' | 'end';
  uid: string;
  branch: string;
  method: string;
  outcome: string | null;
}

export function callsOf(db: Database.Database, uid: string): CallRecord[] {
  return db.prepare(`SELECT at, event, uid, branch, method, outcome FROM calls WHERE uid = ? ORDER BY seq`).all(uid) as CallRecord[];
}

export function freeOf(db: Database.Database, resource: string): number {
  return (db.prepare(`SELECT free FROM availability WHERE resource = ?`).get(resource) as { free: number } | undefined)?.free ?? 0;
}

export function bookingsOf(db: Database.Database, uid: string): Array<{ branch: string; resource: string; qty: number; state: string }> {
  return db.prepare(`SELECT branch, resource, qty, state FROM bookings WHERE uid = ? ORDER BY branch`).all(uid) as Array<{
    branch: string;
    resource: string;
    qty: number;
    state: string;
  }>;
}

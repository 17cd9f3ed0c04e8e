/**
 * Ledgers: the business state of each payment service, read straight from its
 * SQLite file (safe while the service runs).
 *
 *   npx tsx examples/payment/ledger.ts --db-dir /tmp/pay       all four, as one JSON object
 *   npx tsx examples/payment/ledger.ts --db /tmp/pay/credit.db one service
 *   add --no-barrier to leave out the barrier rows
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type Database from 'better-sqlite3';
import { dbPathIn, openExisting, SERVICES, type ServiceName } from './db.js';

export interface BarrierEntry {
  uid: string;
  branch: string;
  method: string;
  origin: 'call' | 'blocker';
  message: string;
}

export interface OrderLedger {
  service: 'order';
  orders: Record<string, { userId: number; status: 'UNPAID' | 'UPDATING' | 'PAID' | 'CANCELED' }>;
  barrier: BarrierEntry[];
}

export interface InventoryLedger {
  service: 'inventory';
  items: Record<string, { stock: number; frozen: number; sold: number }>;
  reservations: Array<{ id: string; orderId: number | null; sku: string; qty: number; state: 'RESERVED' | 'SOLD' | 'RELEASED' }>;
  barrier: BarrierEntry[];
}

export interface CreditLedger {
  service: 'credit';
  accounts: Record<string, { credit: number; prepareAddCredit: number }>;
  barrier: BarrierEntry[];
}

export interface WarehouseLedger {
  service: 'warehouse';
  deliveryNotes: Array<{ id: string; orderId: number; sku: string | null; qty: number | null; state: 'UNKNOWN' | 'CREATED' | 'CANCELED' }>;
  barrier: BarrierEntry[];
}

export type Ledger = OrderLedger | InventoryLedger | CreditLedger | WarehouseLedger;

export interface Ledgers {
  order?: OrderLedger;
  inventory?: InventoryLedger;
  credit?: CreditLedger;
  warehouse?: WarehouseLedger;
}

/** Reads one service's ledger; which service it is comes from the file itself. */
export function readLedger(dbPath: string): Ledger {
  const db = openExisting(dbPath, true);
  try {
    const owner = db.prepare(`SELECT value FROM meta WHERE key = 'service'`).get() as { value: string } | undefined;
    if (!owner) throw new Error(`${dbPath} is not a payment service database`);
    return readFrom(db, owner.value as ServiceName);
  } finally {
    db.close();
  }
}

/** Reads the ledgers of the services whose files exist in `dbDir` (named <service>.db). */
export function readLedgers(dbDir: string): Ledgers {
  const out: Record<string, Ledger> = {};
  for (const s of SERVICES) {
    const p = dbPathIn(dbDir, s);
    if (existsSync(p)) out[s] = readLedger(p);
  }
  return out as Ledgers;
}

function readFrom(db: Database.Database, service: ServiceName): Ledger {
  const barrier = readBarrier(db);
  switch (service) {
    case 'order': {
      const rows = db.prepare(`SELECT id, user_id, status FROM orders ORDER BY id`).all() as Array<{ id: number; user_id: number; status: OrderLedger['orders'][string]['status'] }>;
      return { service, orders: Object.fromEntries(rows.map((r) => [String(r.id), { userId: r.user_id, status: r.status }])), barrier };
    }
    case 'inventory': {
      const items = db.prepare(`SELECT sku, stock, frozen, sold FROM items ORDER BY sku`).all() as Array<{ sku: string; stock: number; frozen: number; sold: number }>;
      const reservations = db
        .prepare(`SELECT id, order_id AS orderId, sku, qty, state FROM reservations ORDER BY created_at, id`)
        .all() as InventoryLedger['reservations'];
      return {
        service,
        items: Object.fromEntries(items.map((r) => [r.sku, { stock: r.stock, frozen: r.frozen, sold: r.sold }])),
        reservations,
        barrier,
      };
    }
    case 'credit': {
      const rows = db.prepare(`SELECT user_id, credit, prepare_add_credit FROM accounts ORDER BY user_id`).all() as Array<{ user_id: number; credit: number; prepare_add_credit: number }>;
      return {
        service,
        accounts: Object.fromEntries(rows.map((r) => [String(r.user_id), { credit: r.credit, prepareAddCredit: r.prepare_add_credit }])),
        barrier,
      };
    }
    case 'warehouse': {
      const deliveryNotes = db
        .prepare(`SELECT id, order_id AS orderId, sku, qty, state FROM delivery_notes ORDER BY created_at, id`)
        .all() as WarehouseLedger['deliveryNotes'];
      return { service, deliveryNotes, barrier };
    }
  }
}

function readBarrier(db: Database.Database): BarrierEntry[] {
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kubetx_barrier'`).get();
  if (!exists) return [];
  return db
    .prepare(`SELECT uid, branch, method, origin, message FROM kubetx_barrier ORDER BY created_at, uid, branch, method`)
    .all() as BarrierEntry[];
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'db-dir': { type: 'string' },
      db: { type: 'string' },
      'no-barrier': { type: 'boolean' },
    },
  });
  let out: Ledger | Ledgers;
  if (values.db) out = readLedger(values.db);
  else if (values['db-dir']) out = readLedgers(values['db-dir']);
  else throw new Error('usage: ledger.ts --db-dir DIR | --db FILE [--no-barrier]');
  const replacer = values['no-barrier'] ? (k: string, v: unknown) => (k === 'barrier' ? undefined : v) : undefined;
  process.stdout.write(`${JSON.stringify(out, replacer, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}

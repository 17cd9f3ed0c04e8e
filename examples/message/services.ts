/**
 * The reliable-message example's services (seed 001/003): an order service
 * (the upstream) creates an order in its own database and, reliably, tells
 * inventory and credit about it.
 *
 *   order      upstream: prepareMessage → local transaction (order row + outbox row) → commit();
 *              also the check-back server (MessageSource/CheckPrepared) answering from its outbox
 *   inventory  receiver: Deliver reduces stock of the sku (idempotent through the barrier)
 *   credit     receiver: Deliver adds credit to the user (idempotent through the barrier)
 *
 * Each service has its own SQLite file. Receivers record every applied
 * delivery in `deliveries` (one row per transaction uid: the barrier makes a
 * repeated Deliver a no-op), so "applied exactly once" can be checked.
 */
import Database from 'better-sqlite3';
import * as k8s from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import type { Endpoint, RetryPolicy } from '../../src/api/types.js';
import {
  checkPreparedFromOutbox,
  serveParticipant,
  type Middleware,
  type Participant,
} from '../../sdk/typescript/src/index.js';
import { SqliteBarrier, SqliteOutbox } from '../../sdk/typescript/src/sqlite.js';
import { prepareMessage, type PreparedMessage, type MessageTransaction } from '../../sdk/typescript/src/message.js';

export const SKU = 'A-1';
export const USER_ID = 7;

// ---------------------------------------------------------------- order (upstream)

export interface OrderService {
  port: number;
  db: Database.Database;
  outbox: SqliteOutbox;
  participant: Participant;
  stop(graceMs?: number): Promise<void>;
}

export function openOrderDb(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL,
    status TEXT NOT NULL, message_uid TEXT NOT NULL, created_at INTEGER NOT NULL)`);
  return db;
}

/** The order service's check-back server: answers CheckPrepared from its outbox table. */
export async function startOrderService(opts: { dbPath: string; address: string; logger?: Logger }): Promise<OrderService> {
  const db = openOrderDb(opts.dbPath);
  const outbox = new SqliteOutbox(db);
  const participant = await serveParticipant({
    address: opts.address,
    source: checkPreparedFromOutbox(outbox),
    logger: (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ service: 'order' }),
  });
  return {
    port: participant.port,
    db,
    outbox,
    participant,
    stop: async (graceMs = 0) => {
      await participant.shutdown(graceMs);
      db.close();
    },
  };
}

export interface OrderMessageOptions {
  name: string;
  namespace: string;
  orderId: number;
  qty?: number;
  credit?: number;
  endpoints: { order: Endpoint; inventory: Endpoint; credit: Endpoint };
  checkAfter?: string;
  timeout?: string;
  retry?: RetryPolicy;
}

/** The DistributedTransaction the order service creates for one order. */
export function orderMessage(o: OrderMessageOptions): MessageTransaction {
  const qty = o.qty ?? 2;
  return {
    metadata: { name: o.name, namespace: o.namespace, labels: { 'example.kubetx.io/order': String(o.orderId) } },
    spec: {
      ...(o.timeout ? { timeout: o.timeout } : {}),
      retry: o.retry ?? { initialInterval: '200ms', maxInterval: '2s' },
      payload: { orderId: o.orderId },
      branches: [
        { name: 'inventory', endpoint: o.endpoints.inventory, operation: 'reduceStock', payload: { orderId: o.orderId, sku: SKU, qty } },
        { name: 'credit', endpoint: o.endpoints.credit, operation: 'addCredit', payload: { orderId: o.orderId, userId: USER_ID, credit: o.credit ?? 10 } },
      ],
      message: { source: { endpoint: o.endpoints.order, operation: 'createOrder' }, ...(o.checkAfter ? { checkAfter: o.checkAfter } : {}) },
    },
  };
}

export type PlaceOrderOutcome = 'committed' | 'rolled-back' | 'crashed-before-local-commit' | 'crashed-before-decision';

/**
 * Places an order the reliable way. `crash` simulates the upstream dying at
 * one of the two dangerous points (the check-back resolves both);
 * `failLocal` makes the local transaction fail (the message is rolled back).
 */
export async function placeOrder(
  kc: k8s.KubeConfig,
  order: OrderService,
  o: OrderMessageOptions & { failLocal?: string; crash?: 'before-local-commit' | 'before-decision' },
): Promise<{ outcome: PlaceOrderOutcome; message: PreparedMessage<Database.Database> }> {
  const message = await prepareMessage(kc, orderMessage(o), { outbox: order.outbox });
  if (o.crash === 'before-local-commit') return { outcome: 'crashed-before-local-commit', message };
  const local = (db: Database.Database) => {
    db.prepare(`INSERT INTO orders (id, user_id, sku, qty, status, message_uid, created_at) VALUES (?, ?, ?, ?, 'CREATED', ?, ?)`).run(
      o.orderId,
      USER_ID,
      SKU,
      o.qty ?? 2,
      message.uid,
      Date.now(),
    );
    if (o.failLocal) throw new Error(o.failLocal);
  };
  if (o.crash === 'before-decision') {
    await message.runLocal(local);
    return { outcome: 'crashed-before-decision', message };
  }
  try {
    await message.execute(local);
    return { outcome: 'committed', message };
  } catch (err) {
    if (o.failLocal && (err as Error).message === o.failLocal) return { outcome: 'rolled-back', message };
    throw err;
  }
}

// ---------------------------------------------------------------- receivers

export type ReceiverName = 'inventory' | 'credit';

export interface Receiver {
  name: ReceiverName;
  port: number;
  db: Database.Database;
  /** Deliver calls that reached the handler's middleware, by transaction uid. */
  calls: Map<string, number>;
  /** Applied deliveries (rows of `deliveries`) for a transaction uid. */
  applied(uid: string): number;
  /** Makes the next n Deliver calls fail after they were applied (a lost response): the operator retries. */
  loseResponses(n: number): void;
  stop(graceMs?: number): Promise<void>;
}

export function openReceiverDb(name: ReceiverName, path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS deliveries (uid TEXT PRIMARY KEY, order_id INTEGER NOT NULL, applied_at INTEGER NOT NULL)`);
  if (name === 'inventory') {
    db.exec(`CREATE TABLE IF NOT EXISTS items (sku TEXT PRIMARY KEY, stock INTEGER NOT NULL)`);
    db.prepare(`INSERT OR IGNORE INTO items VALUES (?, 100)`).run(SKU);
  } else {
    db.exec(`CREATE TABLE IF NOT EXISTS accounts (user_id INTEGER PRIMARY KEY, credit INTEGER NOT NULL)`);
    db.prepare(`INSERT OR IGNORE INTO accounts VALUES (?, 1190)`).run(USER_ID);
  }
  return db;
}

export async function startReceiver(opts: { name: ReceiverName; dbPath: string; address: string; logger?: Logger }): Promise<Receiver> {
  const db = openReceiverDb(opts.name, opts.dbPath);
  const barrier = new SqliteBarrier(db);
  const calls = new Map<string, number>();
  let lose = 0;
  const middleware: Middleware<Database.Database> = async (ctx, next) => {
    calls.set(ctx.uid, (calls.get(ctx.uid) ?? 0) + 1);
    const result = await next();
    if (lose > 0) {
      lose--;
      throw new Error('injected: response lost after the delivery was applied');
    }
    return result;
  };
  const participant = await serveParticipant<Database.Database>({
    address: opts.address,
    barrier,
    middleware,
    logger: (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ service: opts.name }),
    receiver: {
      // Runs inside the barrier's SQLite transaction: a repeated Deliver of the same uid never gets here.
      deliver: (ctx) => {
        const p = ctx.payload as { orderId: number; sku?: string; qty?: number; userId?: number; credit?: number };
        if (opts.name === 'inventory') {
          // A confirmed message cannot be refused: stock may go negative (a backorder the business handles).
          ctx.tx.prepare(`UPDATE items SET stock = stock - ? WHERE sku = ?`).run(p.qty ?? 0, p.sku ?? SKU);
        } else {
          ctx.tx.prepare(`UPDATE accounts SET credit = credit + ? WHERE user_id = ?`).run(p.credit ?? 0, p.userId ?? USER_ID);
        }
        ctx.tx.prepare(`INSERT INTO deliveries (uid, order_id, applied_at) VALUES (?, ?, ?)`).run(ctx.uid, p.orderId, Date.now());
        return { message: `${opts.name}: order ${p.orderId} applied` };
      },
    },
  });
  const appliedStmt = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM deliveries WHERE uid = ?`);
  return {
    name: opts.name,
    port: participant.port,
    db,
    calls,
    applied: (uid) => appliedStmt.get(uid)!.n,
    loseResponses: (n) => {
      lose = n;
    },
    stop: async (graceMs = 0) => {
      await participant.shutdown(graceMs);
      db.close();
    },
  };
}

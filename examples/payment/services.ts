/**
 * Try/Confirm/Cancel of the four payment services (seed 000).
 *
 * Handlers are synchronous and write only through `ctx.tx` (the better-sqlite3
 * Database of the service): the SqliteBarrier runs them in one transaction with
 * its barrier row, so repeats, Cancel-before-Try and Try-after-Cancel are
 * handled before any of this code runs.
 *
 * Payloads (JSON, see manifests/):
 *   order      {orderId}                       operation "pay"
 *   inventory  {orderId, sku, qty}             operation "reduceStock"
 *   credit     {orderId, userId, credit}       operation "addCredit"
 *   warehouse  {orderId, sku, qty}             operation "saleDelivery"
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { Refused, type BranchContext, type TccHandlers } from '../../src/sdk/index.js';
import type { ServiceName } from './db.js';

type Ctx = BranchContext<Database.Database>;
type Handlers = TccHandlers<Database.Database>;

function payloadObject(ctx: Ctx): Record<string, unknown> {
  const p = ctx.payload;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Refused('payload must be a JSON object');
  return p as Record<string, unknown>;
}

function positiveInt(p: Record<string, unknown>, field: string): number {
  const v = p[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new Refused(`payload.${field} must be a positive integer`);
  return v;
}

function nonEmptyString(p: Record<string, unknown>, field: string): string {
  const v = p[field];
  if (typeof v !== 'string' || v === '') throw new Refused(`payload.${field} must be a non-empty string`);
  return v;
}

/** The id a Try returned in `data` ({[field]: id}), handed back as `result`. */
function idFromResult(ctx: Ctx, field: string): string | undefined {
  if (ctx.result.length === 0) return undefined;
  try {
    const v = (JSON.parse(ctx.result.toString('utf8')) as Record<string, unknown>)[field];
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

// ---- order: UNPAID → UPDATING (Try) → PAID (Confirm) | CANCELED (Cancel) ----

function moveOrder(ctx: Ctx, from: string, to: string): { message: string } {
  const orderId = positiveInt(payloadObject(ctx), 'orderId');
  const row = ctx.tx.prepare(`SELECT status FROM orders WHERE id = ?`).get(orderId) as { status: string } | undefined;
  if (!row) throw new Refused(`order ${orderId} not found`);
  if (row.status !== from) {
    const msg = `order ${orderId} is ${row.status}, not ${from}`;
    // A Try on an order in the wrong state is a business "no"; in Confirm/Cancel it is an inconsistency worth retrying loudly.
    if (ctx.method === 'Try') throw new Refused(msg);
    throw new Error(msg);
  }
  ctx.tx.prepare(`UPDATE orders SET status = ?, updated_at = ? WHERE id = ?`).run(to, Date.now(), orderId);
  return { message: `order ${orderId} ${to}` };
}

export const orderHandlers: Handlers = {
  try: (ctx) => moveOrder(ctx, 'UNPAID', 'UPDATING'),
  confirm: (ctx) => moveOrder(ctx, 'UPDATING', 'PAID'),
  cancel: (ctx) => moveOrder(ctx, 'UPDATING', 'CANCELED'),
};

// ---- inventory: Try freezes qty (stock -= qty, frozen += qty) and returns a reservation id ----

interface Reservation {
  id: string;
  sku: string;
  qty: number;
  state: string;
}

function reservationOf(ctx: Ctx): Reservation {
  const id = idFromResult(ctx, 'reservationId');
  const row = (
    id !== undefined
      ? ctx.tx.prepare(`SELECT id, sku, qty, state FROM reservations WHERE id = ?`).get(id)
      : ctx.tx.prepare(`SELECT id, sku, qty, state FROM reservations WHERE uid = ? AND branch = ?`).get(ctx.uid, ctx.branch)
  ) as Reservation | undefined;
  if (!row) throw new Error(`reservation ${id ?? `of ${ctx.uid}/${ctx.branch}`} not found`);
  if (row.state !== 'RESERVED') throw new Error(`reservation ${row.id} is ${row.state}, not RESERVED`);
  return row;
}

export const inventoryHandlers: Handlers = {
  try: (ctx) => {
    const p = payloadObject(ctx);
    const sku = nonEmptyString(p, 'sku');
    const qty = positiveInt(p, 'qty');
    const orderId = typeof p.orderId === 'number' ? p.orderId : null;
    const item = ctx.tx.prepare(`SELECT stock FROM items WHERE sku = ?`).get(sku) as { stock: number } | undefined;
    if (!item) throw new Refused(`unknown sku ${sku}`);
    if (item.stock < qty) throw new Refused(`insufficient stock: ${sku} has ${item.stock}, ${qty} requested`);
    ctx.tx.prepare(`UPDATE items SET stock = stock - ?, frozen = frozen + ? WHERE sku = ?`).run(qty, qty, sku);
    const reservationId = `rsv-${randomUUID()}`;
    ctx.tx
      .prepare(`INSERT INTO reservations (id, uid, branch, order_id, sku, qty, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'RESERVED', ?)`)
      .run(reservationId, ctx.uid, ctx.branch, orderId, sku, qty, Date.now());
    return { message: `froze ${qty} of ${sku}`, data: { reservationId } };
  },
  confirm: (ctx) => {
    const r = reservationOf(ctx);
    ctx.tx.prepare(`UPDATE items SET frozen = frozen - ?, sold = sold + ? WHERE sku = ?`).run(r.qty, r.qty, r.sku);
    ctx.tx.prepare(`UPDATE reservations SET state = 'SOLD' WHERE id = ?`).run(r.id);
    return { message: `sold ${r.qty} of ${r.sku}` };
  },
  cancel: (ctx) => {
    const r = reservationOf(ctx);
    ctx.tx.prepare(`UPDATE items SET frozen = frozen - ?, stock = stock + ? WHERE sku = ?`).run(r.qty, r.qty, r.sku);
    ctx.tx.prepare(`UPDATE reservations SET state = 'RELEASED' WHERE id = ?`).run(r.id);
    return { message: `released ${r.qty} of ${r.sku}` };
  },
};

// ---- credit: Try puts the points in prepare_add_credit, Confirm moves them to credit ----

function creditArgs(ctx: Ctx): { userId: number; credit: number } {
  const p = payloadObject(ctx);
  const userId = positiveInt(p, 'userId');
  const credit = positiveInt(p, 'credit');
  const row = ctx.tx.prepare(`SELECT 1 FROM accounts WHERE user_id = ?`).get(userId);
  if (!row) throw new Refused(`user ${userId} has no credit account`);
  return { userId, credit };
}

export const creditHandlers: Handlers = {
  try: (ctx) => {
    const { userId, credit } = creditArgs(ctx);
    ctx.tx.prepare(`UPDATE accounts SET prepare_add_credit = prepare_add_credit + ? WHERE user_id = ?`).run(credit, userId);
    return { message: `${credit} points prepared for user ${userId}` };
  },
  confirm: (ctx) => {
    const { userId, credit } = creditArgs(ctx);
    ctx.tx
      .prepare(`UPDATE accounts SET credit = credit + ?, prepare_add_credit = prepare_add_credit - ? WHERE user_id = ?`)
      .run(credit, credit, userId);
    return { message: `${credit} points added for user ${userId}` };
  },
  cancel: (ctx) => {
    const { userId, credit } = creditArgs(ctx);
    ctx.tx.prepare(`UPDATE accounts SET prepare_add_credit = prepare_add_credit - ? WHERE user_id = ?`).run(credit, userId);
    return { message: `${credit} prepared points dropped for user ${userId}` };
  },
};

// ---- warehouse: Try creates the delivery note UNKNOWN, Confirm → CREATED, Cancel → CANCELED ----

function moveNote(ctx: Ctx, to: 'CREATED' | 'CANCELED'): { message: string } {
  const id = idFromResult(ctx, 'deliveryNoteId');
  const note = (
    id !== undefined
      ? ctx.tx.prepare(`SELECT id, state FROM delivery_notes WHERE id = ?`).get(id)
      : ctx.tx.prepare(`SELECT id, state FROM delivery_notes WHERE uid = ? AND branch = ?`).get(ctx.uid, ctx.branch)
  ) as { id: string; state: string } | undefined;
  if (!note) throw new Error(`delivery note ${id ?? `of ${ctx.uid}/${ctx.branch}`} not found`);
  if (note.state !== 'UNKNOWN') throw new Error(`delivery note ${note.id} is ${note.state}, not UNKNOWN`);
  ctx.tx.prepare(`UPDATE delivery_notes SET state = ? WHERE id = ?`).run(to, note.id);
  return { message: `delivery note ${note.id} ${to}` };
}

export const warehouseHandlers: Handlers = {
  try: (ctx) => {
    const p = payloadObject(ctx);
    const orderId = positiveInt(p, 'orderId');
    const sku = typeof p.sku === 'string' ? p.sku : null;
    const qty = typeof p.qty === 'number' ? p.qty : null;
    const deliveryNoteId = `dn-${orderId}-${randomUUID().slice(0, 8)}`;
    ctx.tx
      .prepare(`INSERT INTO delivery_notes (id, uid, branch, order_id, sku, qty, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'UNKNOWN', ?)`)
      .run(deliveryNoteId, ctx.uid, ctx.branch, orderId, sku, qty, Date.now());
    return { message: `delivery note ${deliveryNoteId} UNKNOWN`, data: { deliveryNoteId } };
  },
  confirm: (ctx) => moveNote(ctx, 'CREATED'),
  cancel: (ctx) => moveNote(ctx, 'CANCELED'),
};

export const HANDLERS: Record<ServiceName, Handlers> = {
  order: orderHandlers,
  inventory: inventoryHandlers,
  credit: creditHandlers,
  warehouse: warehouseHandlers,
};

/**
 * Try/Confirm/Cancel (TCC) and Execute/Compensate (Saga) of the four payment
 * services (seed 000). Both protocols move the same quantities: Saga's Execute
 * does in one step what Try + Confirm do, Compensate undoes it exactly.
 *
 * Handlers are synchronous and write only through `ctx.tx` (the better-sqlite3
 * Database of the service): the SqliteBarrier runs them in one transaction with
 * its barrier row, so repeats, Cancel-before-Try and Try-after-Cancel (and the
 * same for Compensate/Execute) are handled before any of this code runs. The
 * barrier key includes the method, so TCC rows and Saga rows never collide.
 *
 * Payloads (JSON, see manifests/):
 *   order      {orderId}                       operation "pay"
 *   inventory  {orderId, sku, qty}             operation "reduceStock"
 *   credit     {orderId, userId, credit}       operation "addCredit"
 *   warehouse  {orderId, sku, qty}             operation "saleDelivery"
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { Refused, type BranchContext, type SagaHandlers, type TccHandlers } from '../../sdk/typescript/src/index.js';
import type { ServiceName } from './db.js';

type Ctx = BranchContext<Database.Database>;
type Handlers = TccHandlers<Database.Database>;
type Saga = SagaHandlers<Database.Database>;

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

// ---- order: UNPAID → UPDATING (Try) → PAID (Confirm) | CANCELED (Cancel); Saga: UNPAID → PAID (Execute) → CANCELED (Compensate) ----

function moveOrder(ctx: Ctx, from: string, to: string): { message: string } {
  const orderId = positiveInt(payloadObject(ctx), 'orderId');
  const row = ctx.tx.prepare(`SELECT status FROM orders WHERE id = ?`).get(orderId) as { status: string } | undefined;
  if (!row) throw new Refused(`order ${orderId} not found`);
  if (row.status !== from) {
    const msg = `order ${orderId} is ${row.status}, not ${from}`;
    // A Try/Execute on an order in the wrong state is a business "no"; later it is an inconsistency worth retrying loudly.
    if (ctx.method === 'Try' || ctx.method === 'Execute') throw new Refused(msg);
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

export const orderSaga: Saga = {
  execute: (ctx) => moveOrder(ctx, 'UNPAID', 'PAID'),
  // CANCELED, as TCC's Cancel leaves it: the order was paid and is now void.
  compensate: (ctx) => moveOrder(ctx, 'PAID', 'CANCELED'),
};

// ---- inventory: Try freezes qty (stock -= qty, frozen += qty) and returns a reservation id ----

interface Reservation {
  id: string;
  sku: string;
  qty: number;
  state: string;
}

/** This branch's reservation (by the id its Try/Execute returned, else by uid and branch), which must be in `state`. */
function reservationOf(ctx: Ctx, state: 'RESERVED' | 'SOLD' = 'RESERVED'): Reservation {
  const id = idFromResult(ctx, 'reservationId');
  const row = (
    id !== undefined
      ? ctx.tx.prepare(`SELECT id, sku, qty, state FROM reservations WHERE id = ?`).get(id)
      : ctx.tx.prepare(`SELECT id, sku, qty, state FROM reservations WHERE uid = ? AND branch = ?`).get(ctx.uid, ctx.branch)
  ) as Reservation | undefined;
  if (!row) throw new Error(`reservation ${id ?? `of ${ctx.uid}/${ctx.branch}`} not found`);
  if (row.state !== state) throw new Error(`reservation ${row.id} is ${row.state}, not ${state}`);
  return row;
}

/**
 * Takes qty off the stock into `into` (frozen for Try, sold for Execute) and
 * records a reservation in `state`, whose id the call returns.
 */
function takeStock(ctx: Ctx, into: 'frozen' | 'sold', state: 'RESERVED' | 'SOLD'): { message: string; data: { reservationId: string } } {
  const p = payloadObject(ctx);
  const sku = nonEmptyString(p, 'sku');
  const qty = positiveInt(p, 'qty');
  const orderId = typeof p.orderId === 'number' ? p.orderId : null;
  const item = ctx.tx.prepare(`SELECT stock FROM items WHERE sku = ?`).get(sku) as { stock: number } | undefined;
  if (!item) throw new Refused(`unknown sku ${sku}`);
  if (item.stock < qty) throw new Refused(`insufficient stock: ${sku} has ${item.stock}, ${qty} requested`);
  ctx.tx.prepare(`UPDATE items SET stock = stock - ?, ${into} = ${into} + ? WHERE sku = ?`).run(qty, qty, sku);
  const reservationId = `rsv-${randomUUID()}`;
  ctx.tx
    .prepare(`INSERT INTO reservations (id, uid, branch, order_id, sku, qty, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    .run(reservationId, ctx.uid, ctx.branch, orderId, sku, qty, state, Date.now());
  return { message: `${into === 'frozen' ? 'froze' : 'sold'} ${qty} of ${sku}`, data: { reservationId } };
}

export const inventoryHandlers: Handlers = {
  try: (ctx) => takeStock(ctx, 'frozen', 'RESERVED'),
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

/** Saga: Execute sells straight from the stock (its reservation is SOLD at once); Compensate puts it back. */
export const inventorySaga: Saga = {
  execute: (ctx) => takeStock(ctx, 'sold', 'SOLD'),
  compensate: (ctx) => {
    const r = reservationOf(ctx, 'SOLD');
    ctx.tx.prepare(`UPDATE items SET sold = sold - ?, stock = stock + ? WHERE sku = ?`).run(r.qty, r.qty, r.sku);
    ctx.tx.prepare(`UPDATE reservations SET state = 'RELEASED' WHERE id = ?`).run(r.id);
    return { message: `returned ${r.qty} of ${r.sku} to the stock` };
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

/** Saga: the points go straight to `credit` and are taken back by Compensate. */
export const creditSaga: Saga = {
  execute: (ctx) => {
    const { userId, credit } = creditArgs(ctx);
    ctx.tx.prepare(`UPDATE accounts SET credit = credit + ? WHERE user_id = ?`).run(credit, userId);
    return { message: `${credit} points added for user ${userId}` };
  },
  compensate: (ctx) => {
    const { userId, credit } = creditArgs(ctx);
    ctx.tx.prepare(`UPDATE accounts SET credit = credit - ? WHERE user_id = ?`).run(credit, userId);
    return { message: `${credit} points taken back from user ${userId}` };
  },
};

// ---- warehouse: Try creates the delivery note UNKNOWN, Confirm → CREATED, Cancel → CANCELED ----
// ---- Saga: Execute creates it CREATED, Compensate → CANCELED ----

type NoteState = 'UNKNOWN' | 'CREATED' | 'CANCELED';

function moveNote(ctx: Ctx, from: NoteState, to: NoteState): { message: string } {
  const id = idFromResult(ctx, 'deliveryNoteId');
  const note = (
    id !== undefined
      ? ctx.tx.prepare(`SELECT id, state FROM delivery_notes WHERE id = ?`).get(id)
      : ctx.tx.prepare(`SELECT id, state FROM delivery_notes WHERE uid = ? AND branch = ?`).get(ctx.uid, ctx.branch)
  ) as { id: string; state: string } | undefined;
  if (!note) throw new Error(`delivery note ${id ?? `of ${ctx.uid}/${ctx.branch}`} not found`);
  if (note.state !== from) throw new Error(`delivery note ${note.id} is ${note.state}, not ${from}`);
  ctx.tx.prepare(`UPDATE delivery_notes SET state = ? WHERE id = ?`).run(to, note.id);
  return { message: `delivery note ${note.id} ${to}` };
}

function createNote(ctx: Ctx, state: NoteState): { message: string; data: { deliveryNoteId: string } } {
  const p = payloadObject(ctx);
  const orderId = positiveInt(p, 'orderId');
  const sku = typeof p.sku === 'string' ? p.sku : null;
  const qty = typeof p.qty === 'number' ? p.qty : null;
  const deliveryNoteId = `dn-${orderId}-${randomUUID().slice(0, 8)}`;
  ctx.tx
    .prepare(`INSERT INTO delivery_notes (id, uid, branch, order_id, sku, qty, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    .run(deliveryNoteId, ctx.uid, ctx.branch, orderId, sku, qty, state, Date.now());
  return { message: `delivery note ${deliveryNoteId} ${state}`, data: { deliveryNoteId } };
}

export const warehouseHandlers: Handlers = {
  try: (ctx) => createNote(ctx, 'UNKNOWN'),
  confirm: (ctx) => moveNote(ctx, 'UNKNOWN', 'CREATED'),
  cancel: (ctx) => moveNote(ctx, 'UNKNOWN', 'CANCELED'),
};

export const warehouseSaga: Saga = {
  execute: (ctx) => createNote(ctx, 'CREATED'),
  compensate: (ctx) => moveNote(ctx, 'CREATED', 'CANCELED'),
};

export const TCC_HANDLERS: Record<ServiceName, Handlers> = {
  order: orderHandlers,
  inventory: inventoryHandlers,
  credit: creditHandlers,
  warehouse: warehouseHandlers,
};

export const SAGA_HANDLERS: Record<ServiceName, Saga> = {
  order: orderSaga,
  inventory: inventorySaga,
  credit: creditSaga,
  warehouse: warehouseSaga,
};

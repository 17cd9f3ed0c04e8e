/**
 * The travel example's participants: flight, hotel and car, each a
 * SagaParticipant on the kubetx SDK with its own SQLite file and the SQLite
 * barrier (so repeated and out-of-order calls change nothing twice).
 *
 *   Execute     books `qty` of the resource for the traveller, or is Refused
 *               ("no rooms left at Harbour Inn") when too few are free.
 *   Compensate  cancels that booking and frees what it held.
 *
 * Payload: { traveller: string, qty?: number (default 1) }. The resource each
 * service sells is fixed by its seed (db.ts), as a real booking system's would be.
 *
 * Faults, for the tests and the demo (the `faults` table, read on every call):
 *   setTravelFault(db, { method: 'Execute', mode: 'refuse' })               every Execute refused
 *   setTravelFault(db, { method: 'Compensate', mode: 'fail', remaining: 5 }) 5 Compensates fail (UNAVAILABLE), then normal
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { Refused, serveParticipant, type BranchContext, type Middleware, type Participant } from '../../sdk/typescript/src/index.js';
import { openTravelDb, TRAVEL_PORTS, TRAVEL_SEED, type TravelDb, type TravelService } from './db.js';

export interface TravelFault {
  method: 'Execute' | 'Compensate';
  mode: 'refuse' | 'fail';
  /** How many calls it fires for; unset = every call. */
  remaining?: number;
}

export function setTravelFault(db: Database.Database, f: TravelFault): void {
  db.prepare(`INSERT OR REPLACE INTO faults (method, mode, remaining) VALUES (?, ?, ?)`).run(f.method, f.mode, f.remaining ?? null);
}

export function clearTravelFaults(db: Database.Database): void {
  db.exec(`DELETE FROM faults`);
}

/** Takes one firing of the fault for `method`, if any (in one statement, so concurrent calls count right). */
function takeFault(db: Database.Database, method: string): TravelFault['mode'] | undefined {
  return db.transaction(() => {
    const row = db.prepare(`SELECT mode, remaining FROM faults WHERE method = ?`).get(method) as
      | { mode: TravelFault['mode']; remaining: number | null }
      | undefined;
    if (!row) return undefined;
    if (row.remaining !== null) {
      if (row.remaining <= 1) db.prepare(`DELETE FROM faults WHERE method = ?`).run(method);
      else db.prepare(`UPDATE faults SET remaining = remaining - 1 WHERE method = ?`).run(method);
    }
    return row.mode;
  })();
}

interface Booking {
  traveller: string;
  qty: number;
}

function parseBooking(payload: unknown): Booking {
  const p = (payload ?? {}) as { traveller?: unknown; qty?: unknown };
  if (typeof p.traveller !== 'string' || p.traveller === '') throw new Refused('payload.traveller must be a non-empty string');
  const qty = p.qty ?? 1;
  if (typeof qty !== 'number' || !Number.isSafeInteger(qty) || qty < 1) throw new Refused('payload.qty must be a positive integer');
  return { traveller: p.traveller, qty };
}

const NOUN: Record<TravelService, string> = { flight: 'seats', hotel: 'rooms', car: 'cars' };

function handlers(service: TravelService) {
  const resource = TRAVEL_SEED[service].resource;
  return {
    execute(ctx: BranchContext<Database.Database>) {
      const booking = parseBooking(ctx.payload);
      const taken = ctx.tx.prepare(`UPDATE availability SET free = free - ? WHERE resource = ? AND free >= ?`).run(booking.qty, resource, booking.qty);
      if (taken.changes === 0) throw new Refused(`no ${NOUN[service]} left at ${resource} (wanted ${booking.qty})`);
      ctx.tx
        .prepare(`INSERT INTO bookings (uid, branch, traveller, resource, qty, state) VALUES (?, ?, ?, ?, ?, 'BOOKED')`)
        .run(ctx.uid, ctx.branch, booking.traveller, resource, booking.qty);
      return { data: { reference: `${service.toUpperCase()}-${ctx.uid.slice(0, 8)}` } };
    },
    compensate(ctx: BranchContext<Database.Database>) {
      // The barrier only lets Compensate through when Execute committed, so the booking is there.
      const row = ctx.tx.prepare(`SELECT qty FROM bookings WHERE uid = ? AND branch = ? AND state = 'BOOKED'`).get(ctx.uid, ctx.branch) as
        | { qty: number }
        | undefined;
      if (!row) return;
      ctx.tx.prepare(`UPDATE bookings SET state = 'CANCELLED' WHERE uid = ? AND branch = ?`).run(ctx.uid, ctx.branch);
      ctx.tx.prepare(`UPDATE availability SET free = free + ? WHERE resource = ?`).run(row.qty, resource);
    },
  };
}

/** Logs each call's arrival and answer (outside the barrier, so repeats and null compensations show too) and applies faults. */
function callLogAndFaults(db: Database.Database): Middleware<Database.Database> {
  const log = db.prepare(`INSERT INTO calls (at, event, uid, branch, method, outcome) VALUES (?, ?, ?, ?, ?, ?)`);
  // performance.timeOrigin + now(): one monotonic clock for all services of a process.
  const now = () => performance.timeOrigin + performance.now();
  return async (ctx, next) => {
    log.run(now(), 'start', ctx.uid, ctx.branch, ctx.method, null);
    let outcome = 'error';
    try {
      const fault = takeFault(db, ctx.method);
      if (fault === 'refuse') throw new Refused(`${ctx.method} refused by an injected fault`);
      if (fault === 'fail') throw new Error(`${ctx.method} failed by an injected fault (booking system unavailable)`);
      const result = await next();
      outcome = result.outcome;
      return result;
    } catch (err) {
      outcome = err instanceof Refused ? 'refused' : 'error';
      throw err;
    } finally {
      log.run(now(), 'end', ctx.uid, ctx.branch, ctx.method, outcome);
    }
  };
}

export interface RunningTravelService extends TravelDb {
  port: number;
  participant: Participant;
  stop(graceMs?: number): Promise<void>;
}

export async function startTravelService(opts: {
  service: TravelService;
  dbPath: string;
  /** host:port; "127.0.0.1:0" picks a free port. @default "0.0.0.0:<TRAVEL_PORTS[service]>" */
  address?: string;
  logger: Logger;
}): Promise<RunningTravelService> {
  const tdb = openTravelDb(opts.service, opts.dbPath);
  let participant: Participant;
  try {
    participant = await serveParticipant({
      address: opts.address ?? `0.0.0.0:${TRAVEL_PORTS[opts.service]}`,
      saga: handlers(opts.service),
      barrier: tdb.barrier,
      middleware: callLogAndFaults(tdb.db),
      logger: opts.logger.child({ service: opts.service }),
    });
  } catch (err) {
    tdb.db.close();
    throw err;
  }
  return {
    ...tdb,
    port: participant.port,
    participant,
    async stop(graceMs = 2_000) {
      await participant.shutdown(graceMs);
      tdb.db.close();
    },
  };
}

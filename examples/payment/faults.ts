/**
 * Failure injection for the payment services.
 *
 * Switches live in the `faults` table of each service's own SQLite file and are
 * read on every call, so they can be flipped while the service runs:
 *
 *   setFault(dbPath, { method: 'Try', mode: 'refuse' })              every Try refused (ABORTED)
 *   setFault(dbPath, { method: 'Confirm', mode: 'fail', remaining: 3 }) 3 Confirms fail (UNAVAILABLE), then normal
 *   setFault(dbPath, { method: 'Cancel', mode: 'hang' })             Cancel never answers (until the caller's deadline)
 *   setFault(dbPath, { method: 'Try', mode: 'crash' })               process.exit(1) inside Try, before its commit
 *   setFault(dbPath, { method: 'Confirm', mode: 'crash', after: true }) exit after Confirm committed, before the answer
 *   setFault(dbPath, { method: 'Execute', mode: 'refuse' })          every Saga Execute refused (ABORTED)
 *   setFault(dbPath, { method: 'Compensate', mode: 'fail', remaining: 2 }) 2 Compensates fail, then normal
 *   clearFaults(dbPath)
 *
 * Methods: Try, Confirm, Cancel (TCC) and Execute, Compensate (Saga).
 * `remaining` counts firings (unset = every call); `after: true` fires after the
 * barrier transaction committed (fail/hang/crash): the effect is there but the
 * caller does not learn it, so its retry must be answered by the barrier.
 * A Compensate cannot be refused (a Saga has no answer to a compensation's
 * "no"). A refusal is skipped (and not counted) when that very call (uid,
 * branch, method) already took effect, i.e. a retry after a lost answer: a
 * refusal promises that nothing was done, and Saga never compensates a refused branch.
 *
 * CLI:  npx tsx examples/payment/faults.ts --db FILE (--set Method=mode[:count][@after] | --clear [Method] | --list)
 * Spec strings (also for server.ts --fault and $PAYMENT_FAULTS): [service.]Method=mode[:count][@after],
 * e.g. "inventory.Try=refuse", "Confirm=fail:3", "credit.Cancel=crash@after", "warehouse.Execute=refuse:1".
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type Database from 'better-sqlite3';
import { DEFAULT_BARRIER_TABLE, Refused, type BranchContext, type Logger, type Middleware } from '../../sdk/typescript/src/index.js';
import { ensureFaultTable, isServiceName, openExisting, type ServiceName } from './db.js';

export type FaultMethod = 'Try' | 'Confirm' | 'Cancel' | 'Execute' | 'Compensate';
export type FaultMode = 'refuse' | 'fail' | 'hang' | 'crash';

export interface Fault {
  method: FaultMethod;
  mode: FaultMode;
  /** How many calls it fires for; unset = all. */
  remaining?: number;
  /** Fire after the call's effect committed (fail, hang, crash only). */
  after?: boolean;
  /** Error text to answer with (refuse, fail). */
  message?: string;
}

export const FAULT_METHODS: readonly FaultMethod[] = ['Try', 'Confirm', 'Cancel', 'Execute', 'Compensate'];
const MODES: readonly FaultMode[] = ['refuse', 'fail', 'hang', 'crash'];

function validate(f: Fault): void {
  if (!FAULT_METHODS.includes(f.method)) throw new Error(`fault method must be one of ${FAULT_METHODS.join(', ')}`);
  if (!MODES.includes(f.mode)) throw new Error(`fault mode must be one of ${MODES.join(', ')}`);
  if (f.remaining !== undefined && !(Number.isSafeInteger(f.remaining) && f.remaining > 0)) {
    throw new Error('fault remaining must be a positive integer');
  }
  if (f.after && f.mode === 'refuse') throw new Error('a refusal cannot come after the effect committed');
  if (f.method === 'Compensate' && f.mode === 'refuse') throw new Error('a Compensate cannot be refused');
}

/** Sets (replaces) the fault of `fault.method` on an open database. */
export function setFaultIn(db: Database.Database, fault: Fault): void {
  validate(fault);
  ensureFaultTable(db);
  db.prepare(`INSERT OR REPLACE INTO faults (method, mode, remaining, after, message) VALUES (?, ?, ?, ?, ?)`).run(
    fault.method,
    fault.mode,
    fault.remaining ?? null,
    fault.after ? 1 : 0,
    fault.message ?? null,
  );
}

export function clearFaultsIn(db: Database.Database, method?: FaultMethod): void {
  ensureFaultTable(db);
  if (method) db.prepare(`DELETE FROM faults WHERE method = ?`).run(method);
  else db.exec(`DELETE FROM faults`);
}

export function listFaultsIn(db: Database.Database): Fault[] {
  ensureFaultTable(db);
  const rows = db.prepare(`SELECT method, mode, remaining, after, message FROM faults ORDER BY method`).all() as FaultRow[];
  return rows.map(rowToFault);
}

/** Sets a fault in a service's database file; a running service sees it on its next call. */
export function setFault(dbPath: string, fault: Fault): void {
  withDb(dbPath, (db) => setFaultIn(db, fault));
}

export function clearFaults(dbPath: string, method?: FaultMethod): void {
  withDb(dbPath, (db) => clearFaultsIn(db, method));
}

export function listFaults(dbPath: string): Fault[] {
  return withDb(dbPath, listFaultsIn);
}

function withDb<T>(dbPath: string, fn: (db: Database.Database) => T): T {
  const db = openExisting(dbPath);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Parses "[service.]Method=mode[:count][@after]". */
export function parseFaultSpec(spec: string): { service?: ServiceName; fault: Fault } {
  const m = /^(?:([a-z]+)\.)?(Try|Confirm|Cancel|Execute|Compensate)=(refuse|fail|hang|crash)(?::(\d+))?(@after)?$/.exec(spec.trim());
  if (!m) {
    throw new Error(`bad fault spec ${JSON.stringify(spec)}; want [service.]${FAULT_METHODS.join('|')}=${MODES.join('|')}[:count][@after]`);
  }
  const [, svc, method, mode, count, after] = m;
  if (svc !== undefined && !isServiceName(svc)) throw new Error(`bad fault spec ${JSON.stringify(spec)}: unknown service ${svc}`);
  const fault: Fault = { method: method as FaultMethod, mode: mode as FaultMode };
  if (count !== undefined) fault.remaining = Number(count);
  if (after) fault.after = true;
  validate(fault);
  return svc === undefined ? { fault } : { service: svc as ServiceName, fault };
}

interface FaultRow {
  method: FaultMethod;
  mode: FaultMode;
  remaining: number | null;
  after: number;
  message: string | null;
}

function rowToFault(r: FaultRow): Fault {
  const f: Fault = { method: r.method, mode: r.mode };
  if (r.remaining !== null) f.remaining = r.remaining;
  if (r.after) f.after = true;
  if (r.message !== null) f.message = r.message;
  return f;
}

export interface FaultMiddlewareOptions {
  logger?: Logger;
  /** What "crash" does. @default process.exit */
  exit?: (code: number) => void;
  /** Longest a hang lasts when the caller never gives up. @default 1 hour */
  hangMs?: number;
  /** The SqliteBarrier's table, consulted before a refusal. @default "kubetx_barrier" */
  barrierTable?: string;
}

/**
 * The serveParticipant middleware that applies the switches: it reads the
 * table before the call (and again after it, for `after` faults), outside the
 * barrier transaction, so a firing is counted even though the call fails.
 */
export function faultMiddleware(db: Database.Database, options: FaultMiddlewareOptions = {}): Middleware<Database.Database> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const hangMs = options.hangMs ?? 60 * 60 * 1000;
  const table = options.barrierTable ?? DEFAULT_BARRIER_TABLE;
  const select = db.prepare(`SELECT method, mode, remaining, after, message FROM faults WHERE method = ? AND after = ?`);
  /** Did this very call (uid, branch, method) already commit its effect? */
  const tookEffect = (ctx: BranchContext<Database.Database>): boolean => {
    try {
      return db.prepare(`SELECT 1 FROM ${table} WHERE uid = ? AND branch = ? AND method = ? AND origin = 'call'`).get(ctx.uid, ctx.branch, ctx.method) !== undefined;
    } catch {
      return false; // no barrier table (yet): nothing took effect through it
    }
  };
  const take = db.transaction((ctx: BranchContext<Database.Database>, after: number): FaultRow | undefined => {
    const method = ctx.method;
    const row = select.get(method, after) as FaultRow | undefined;
    if (!row) return undefined;
    if (row.mode === 'refuse' && tookEffect(ctx)) return undefined; // see the file comment: refusals stay honest
    if (row.remaining !== null) {
      if (row.remaining <= 1) db.prepare(`DELETE FROM faults WHERE method = ?`).run(method);
      else db.prepare(`UPDATE faults SET remaining = remaining - 1 WHERE method = ?`).run(method);
    }
    return row;
  });

  const fire = async (ctx: BranchContext<Database.Database>, after: boolean, log: Logger | undefined): Promise<void> => {
    const method = ctx.method;
    if (!FAULT_METHODS.includes(method as FaultMethod)) return;
    const row = take.immediate(ctx, after ? 1 : 0);
    if (!row) return;
    log?.warn({ fault: row.mode, after, remaining: row.remaining === null ? null : row.remaining - 1 }, `injected fault: ${method} ${row.mode}`);
    switch (row.mode) {
      case 'refuse':
        throw new Refused(row.message ?? `injected refusal of ${method}`);
      case 'fail':
        throw new Error(row.message ?? `injected failure of ${method}`);
      case 'hang':
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, hangMs);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
        throw new Error(`injected hang of ${method} ended`);
      case 'crash':
        exit(1);
        throw new Error(`injected crash of ${method}`); // reached only when `exit` returns (tests)
    }
  };

  return async (ctx, next) => {
    const log = options.logger ?? ctx.logger;
    await fire(ctx, false, log);
    const result = await next();
    await fire(ctx, true, log);
    return result;
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string' },
      set: { type: 'string', multiple: true },
      clear: { type: 'boolean' },
      method: { type: 'string' },
      list: { type: 'boolean' },
    },
  });
  if (!values.db) throw new Error('usage: faults.ts --db FILE [--set Method=mode[:count][@after]]... [--clear [--method M]] [--list]');
  if (values.clear) clearFaults(values.db, values.method as FaultMethod | undefined);
  for (const spec of values.set ?? []) setFault(values.db, parseFaultSpec(spec).fault);
  process.stdout.write(`${JSON.stringify(listFaults(values.db), null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  });
}

/**
 * A participant for the conformance kit's own tests: every service (TCC,
 * Saga, receiver, source) and the ConformanceHook over one in-memory SQLite
 * database, built on the SDK (serveParticipant, SqliteBarrier, SqliteOutbox).
 * Without `break` it is correct and must pass every rule; each `break`
 * option spoils one part of the contract, so the test can show that the
 * rule guarding it FAILs ("a kit that cannot fail proves nothing").
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import {
  addConformanceHook,
  checkPreparedFromOutbox,
  Refused,
  serveParticipant,
  type Barrier,
  type BarrierKey,
  type BarrierMethod,
  type BarrierResponse,
  type BarrierResult,
  type BranchContext,
  type Middleware,
  type Participant,
  type SourceHandlers,
} from '../../sdk/typescript/src/index.js';
import { SqliteBarrier, SqliteOutbox } from '../../sdk/typescript/src/sqlite.js';

export const BREAKS = [
  /** No idempotency: a repeated call runs its handler again (repeats apply twice). */
  'repeat-applies-twice',
  /** A repeated call answers OK with different data. */
  'unstable-data',
  /** Cancel/Compensate without Try/Execute still runs (releases a hold that does not exist). */
  'no-null-compensation',
  /** A Try/Execute after its Cancel/Compensate runs (the hold hangs). */
  'no-anti-hanging',
  /** A hand-rolled barrier: check, await, then act, without a lock: Try and Cancel race. */
  'racy-barrier',
  /** Try/Execute refuse with UNAVAILABLE instead of ABORTED. */
  'wrong-refusal-code',
  /** Confirm answers ABORTED; Compensate and Deliver answer ABORTED on their first attempt. */
  'refuse-second-phase',
  /** Deliver is not deduplicated. */
  'deliver-not-deduplicated',
  /** CheckPrepared answers COMMITTED for a uid it never saw. */
  'source-commits-unknown',
  /** CheckPrepared answers ROLLED_BACK without claiming: a late prepare still commits. */
  'source-late-prepare',
  /** CheckPrepared answers COMMITTED once, then UNKNOWN (an answer that is not stable). */
  'source-unstable-answer',
] as const;

export type Break = (typeof BREAKS)[number];

type Db = Database.Database;
type Ctx = BranchContext<Db>;

export interface TestParticipant {
  address: string;
  port: number;
  db: Db;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function args(ctx: Ctx): { account: string; amount: number } {
  const p = ctx.payload as { account?: unknown; amount?: unknown } | undefined;
  if (typeof p?.account !== 'string' || typeof p.amount !== 'number') throw new Refused('payload must be {account, amount}', { code: 'FAILED_PRECONDITION' });
  return { account: p.account, amount: p.amount };
}

function accountOf(db: Db, account: string): { balance: number; held: number } {
  const row = db.prepare(`SELECT balance, held FROM accounts WHERE id = ?`).get(account) as { balance: number; held: number } | undefined;
  if (!row) throw new Refused(`no account ${account}`);
  return row;
}

function add(db: Db, account: string, balance: number, held: number): void {
  db.prepare(`UPDATE accounts SET balance = balance + ?, held = held + ? WHERE id = ?`).run(balance, held, account);
}

/** The hook's account semantics (hook.proto), written through ctx.tx. */
const handlers = {
  try: (ctx: Ctx) => {
    const { account, amount } = args(ctx);
    const a = accountOf(ctx.tx, account);
    if (a.balance - a.held < amount) throw new Refused(`insufficient funds: ${a.balance - a.held} available, ${amount} asked`);
    add(ctx.tx, account, 0, amount);
    return { message: `held ${amount}`, data: { holdId: `hold-${randomUUID()}` } };
  },
  confirm: (ctx: Ctx) => {
    const { account, amount } = args(ctx);
    add(ctx.tx, account, -amount, -amount);
    return { message: `applied ${amount}` };
  },
  cancel: (ctx: Ctx) => {
    const { account, amount } = args(ctx);
    add(ctx.tx, account, 0, -amount);
    return { message: `released ${amount}` };
  },
  execute: (ctx: Ctx) => {
    const { account, amount } = args(ctx);
    const a = accountOf(ctx.tx, account);
    if (a.balance - a.held < amount) throw new Refused(`insufficient funds: ${a.balance - a.held} available, ${amount} asked`);
    add(ctx.tx, account, -amount, 0);
    return { message: `debited ${amount}`, data: { debitId: `debit-${randomUUID()}` } };
  },
  compensate: (ctx: Ctx) => {
    const { account, amount } = args(ctx);
    add(ctx.tx, account, amount, 0);
    return { message: `credited back ${amount}` };
  },
  deliver: (ctx: Ctx) => {
    const { account, amount } = args(ctx);
    add(ctx.tx, account, amount, 0);
    return { message: `credited ${amount}` };
  },
};

/** The SqliteBarrier with one of its rules switched off. */
class BrokenBarrier implements Barrier<Db> {
  private readonly rows = new Map<string, { origin: 'call' | 'blocker'; response: BarrierResponse }>();

  constructor(
    private readonly inner: SqliteBarrier,
    private readonly broken: Break | undefined,
  ) {}

  async run(key: BarrierKey, method: BarrierMethod, handler: (tx: Db) => BarrierResponse | Promise<BarrierResponse>): Promise<BarrierResult> {
    const db = this.inner.db;
    const runNow = () => db.transaction(() => handler(db) as BarrierResponse).immediate();
    if (this.broken === 'racy-barrier') return this.racy(key, method, runNow);
    if (this.broken === 'no-anti-hanging' && (method === 'Try' || method === 'Execute') && this.inner.getRow(key, method)?.origin === 'blocker') {
      return { outcome: 'executed', response: runNow() };
    }
    const r = await this.inner.run(key, method, handler);
    if (r.outcome === 'duplicate' && (this.broken === 'repeat-applies-twice' || (this.broken === 'deliver-not-deduplicated' && method === 'Deliver'))) {
      return { outcome: 'executed', response: runNow() };
    }
    if (r.outcome === 'null-compensation' && this.broken === 'no-null-compensation') return { outcome: 'executed', response: runNow() };
    return r;
  }

  /** Check, then (after an await, without any lock) act: a Try and its Cancel both pass their checks. */
  private async racy(key: BarrierKey, method: BarrierMethod, runNow: () => BarrierResponse): Promise<BarrierResult> {
    const k = (m: BarrierMethod) => `${key.uid}/${key.branch}/${m}`;
    const own = this.rows.get(k(method));
    if (own?.origin === 'blocker') throw new Refused(`${method} after its compensation`);
    if (own) return { outcome: 'duplicate', response: own.response };
    const forward = method === 'Cancel' || method === 'Confirm' ? 'Try' : method === 'Compensate' ? 'Execute' : undefined;
    const forwardRan = forward !== undefined && this.rows.get(k(forward))?.origin === 'call';
    await sleep(1 + Math.random() * 3);
    if ((method === 'Cancel' || method === 'Compensate') && !forwardRan) {
      const response = { message: 'null compensation', data: Buffer.alloc(0) };
      this.rows.set(k(forward!), { origin: 'blocker', response });
      this.rows.set(k(method), { origin: 'call', response });
      return { outcome: 'null-compensation', response };
    }
    const response = runNow();
    this.rows.set(k(method), { origin: 'call', response });
    return { outcome: 'executed', response };
  }
}

function brokenMiddleware(broken: Break | undefined): Middleware<Db> | undefined {
  switch (broken) {
    case 'unstable-data':
      return async (_ctx, next) => {
        const r = await next();
        return r.outcome === 'duplicate' ? { ...r, data: Buffer.from(JSON.stringify({ again: randomUUID() })) } : r;
      };
    case 'wrong-refusal-code':
      return async (ctx, next) => {
        try {
          return await next();
        } catch (err) {
          if (err instanceof Refused && (ctx.method === 'Try' || ctx.method === 'Execute')) throw new Error(`no: ${err.message}`);
          throw err;
        }
      };
    case 'refuse-second-phase':
      return async (ctx, next) => {
        if (ctx.method === 'Confirm' || ((ctx.method === 'Compensate' || ctx.method === 'Deliver') && ctx.attempt === 1)) {
          throw new Refused(`${ctx.method} refused (broken participant)`);
        }
        return next();
      };
    default:
      return undefined;
  }
}

function source(outbox: SqliteOutbox, broken: Break | undefined): SourceHandlers {
  if (broken === 'source-commits-unknown') {
    return { checkPrepared: async (ctx) => ((await outbox.state(ctx.uid)) === 'rolled_back' ? 'ROLLED_BACK' : 'COMMITTED') };
  }
  if (broken === 'source-late-prepare') {
    return { checkPrepared: async (ctx) => ((await outbox.state(ctx.uid)) === 'committed' ? 'COMMITTED' : 'ROLLED_BACK') };
  }
  if (broken === 'source-unstable-answer') {
    const answered = new Set<string>();
    return {
      checkPrepared: async (ctx) => {
        const state = await outbox.resolve({ uid: ctx.uid, namespace: ctx.namespace, name: ctx.name });
        if (state === 'COMMITTED' && answered.has(ctx.uid)) return 'UNKNOWN';
        answered.add(ctx.uid);
        return state;
      },
    };
  }
  return checkPreparedFromOutbox(outbox);
}

class LocalRollback extends Error {}

export async function startTestParticipant(opts: { break?: Break; credentials?: grpc.ServerCredentials } = {}): Promise<TestParticipant> {
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL, held INTEGER NOT NULL)`);
  const outbox = new SqliteOutbox(db);
  const barrier = new BrokenBarrier(new SqliteBarrier(db), opts.break);
  const middleware = brokenMiddleware(opts.break);
  const participant: Participant = await serveParticipant<Db>({
    address: '127.0.0.1:0',
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    barrier,
    ...(middleware ? { middleware } : {}),
    logger: pino({ level: process.env.KUBETX_TEST_PARTICIPANT_LOGS ? 'info' : 'silent' }),
    tcc: { try: handlers.try, confirm: handlers.confirm, cancel: handlers.cancel },
    saga: { execute: handlers.execute, compensate: handlers.compensate },
    receiver: { deliver: handlers.deliver },
    source: source(outbox, opts.break),
  });
  addConformanceHook(participant.server, {
    openAccount: (account, balance) => db.prepare(`INSERT OR REPLACE INTO accounts (id, balance, held) VALUES (?, ?, 0)`).run(account, balance),
    readAccount: (account) => db.prepare(`SELECT balance, held FROM accounts WHERE id = ?`).get(account) as { balance: number; held: number } | undefined,
    prepareMessage: (m) => {
      try {
        outbox.runLocalSync({ uid: m.uid, namespace: m.namespace, name: m.name }, (tx) => {
          add(tx, m.account, -m.amount, 0);
          if (!m.commit) throw new LocalRollback();
        });
      } catch (err) {
        if (!(err instanceof LocalRollback)) throw err;
      }
    },
  });
  return {
    address: `127.0.0.1:${participant.port}`,
    port: participant.port,
    db,
    stop: async () => {
      await participant.shutdown(0);
      db.close();
    },
  };
}

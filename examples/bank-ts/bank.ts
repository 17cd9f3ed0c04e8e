/**
 * One bank on its own PostgreSQL database: the schema, and the handlers of the
 * transfer's two halves (TransOut, TransIn) as TCC and as Saga, run by the
 * SDK's PgBarrier in one database transaction with their barrier row (the
 * handler gets that transaction's client as `ctx.tx`). The barrier runs each
 * method at most once per (uid, branch, method), and answers null
 * compensations and hanging Trys without calling it. Semantics: README.md
 * (the same bank as examples/bank-go).
 */
import type pg from 'pg';
import type { BranchContext, HandlerResponse, SagaHandlers, TccHandlers } from '../../sdk/typescript/src/index.js';
import { InvalidPayload, Refused } from '../../sdk/typescript/src/index.js';

/** The operations a branch names in spec.branches[].operation. */
export const OP_TRANS_OUT = 'TransOut';
export const OP_TRANS_IN = 'TransIn';
export type Operation = typeof OP_TRANS_OUT | typeof OP_TRANS_IN;

/**
 * Created at start-up. Every statement is idempotent, and the whole script runs
 * under a transaction-scoped advisory lock, so two processes starting at once
 * against one database do not race on CREATE TABLE (which IF NOT EXISTS alone
 * does not prevent in PostgreSQL). Identical to bank-go's.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id      text PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0),
  held    bigint NOT NULL DEFAULT 0 CHECK (held >= 0)
);
-- TCC TransIn: a credit announced by Try, applied by Confirm, dropped by Cancel.
CREATE TABLE IF NOT EXISTS pending_credits (
  uid     text NOT NULL,
  branch  text NOT NULL,
  account text NOT NULL REFERENCES accounts (id),
  amount  bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (uid, branch)
);
-- Audit: one row each time a handler's business effect commits. No key on
-- purpose: a duplicate effect would show up as a second row.
CREATE TABLE IF NOT EXISTS applied (
  seq        bigserial PRIMARY KEY,
  uid        text NOT NULL,
  branch     text NOT NULL,
  method     text NOT NULL,
  operation  text NOT NULL,
  account    text NOT NULL,
  amount     bigint NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
`;

/** The advisory lock key of the schema script: bank-go's (0x6b75626574780001), so banks in either language serialize. */
export const SCHEMA_LOCK = BigInt('0x6b75626574780001').toString();

export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [SCHEMA_LOCK]);
    await client.query(SCHEMA);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The payload of both operations. */
export interface Transfer {
  account: string;
  amount: number;
}

export function parseTransfer(raw: Buffer): Transfer {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new InvalidPayload(`payload: want {"account": string, "amount": integer}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidPayload('payload: want {"account": string, "amount": integer}');
  }
  const { account, amount } = value as { account?: unknown; amount?: unknown };
  if (account !== undefined && typeof account !== 'string') throw new InvalidPayload('payload: account must be a string');
  if (!account) throw new InvalidPayload('payload: account is missing');
  if (amount !== undefined && !Number.isSafeInteger(amount)) throw new InvalidPayload(`payload: amount must be an integer, got ${kindOf(amount)}`);
  const n = (amount as number | undefined) ?? 0;
  if (n <= 0) throw new InvalidPayload(`payload: amount must be a positive integer, got ${n}`);
  return { account, amount: n };
}

/** What a bad value is, for a message that must not echo the payload: a number as itself, anything else by its type. */
function kindOf(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/**
 * The amount a Confirm/Cancel/Compensate acts on: what its Try/Execute recorded
 * in data, else the payload's (the payload is immutable, so both agree; the
 * result is preferred as the record of what really happened).
 */
export function amountOf(result: Buffer, t: Transfer): number {
  if (result.length > 0) {
    try {
      const r = JSON.parse(result.toString('utf8')) as { amount?: unknown };
      if (Number.isSafeInteger(r.amount) && (r.amount as number) > 0) return r.amount as number;
    } catch {
      // not ours: fall back to the payload
    }
  }
  return t.amount;
}

/**
 * The one way a compensation can fail: TransIn's credit was spent before the
 * Saga rolled back. A plain error, so it is answered UNAVAILABLE and retried:
 * the transaction stays Compensating, visibly, until the account is funded
 * again; the balance never goes negative and no money is made up.
 */
const CREDIT_SPENT = 'the credit to undo has already been spent; retrying until the account is funded';

type Ctx = BranchContext<pg.PoolClient>;

export interface BankOptions {
  /** The bank's name, shown in messages. */
  name: string;
  /** Other operation names taken as TransOut or TransIn, e.g. the conformance kit's "conformance" as TransOut. */
  aliases?: Record<string, Operation>;
}

/** The bank's handlers and the request check that goes with them. */
export class Bank {
  readonly name: string;
  private readonly aliases: Record<string, Operation>;

  constructor(options: BankOptions) {
    this.name = options.name;
    this.aliases = options.aliases ?? {};
  }

  operation(op: string): Operation {
    const resolved = Object.hasOwn(this.aliases, op) ? this.aliases[op]! : op;
    if (resolved !== OP_TRANS_OUT && resolved !== OP_TRANS_IN) {
      throw new InvalidPayload(`unknown operation ${JSON.stringify(op)} (want ${OP_TRANS_OUT} or ${OP_TRANS_IN})`);
    }
    return resolved;
  }

  /** The operation and payload of a call; throws InvalidPayload. */
  parse(operation: string, payload: Buffer): { op: Operation; t: Transfer } {
    return { op: this.operation(operation), t: parseTransfer(payload) };
  }

  readonly tcc: TccHandlers<pg.PoolClient> = {
    // TransOut holds the amount (refused on insufficient funds); TransIn records
    // a pending credit (refused only for an unknown account).
    try: async (ctx) => {
      const { op, t } = this.of(ctx);
      if (op === OP_TRANS_OUT) {
        const n = await rows(ctx.tx, 'UPDATE accounts SET held = held + $2 WHERE id = $1 AND balance - held >= $2', [t.account, t.amount]);
        if (n === 0) throw await this.refusal(ctx.tx, t);
        await audit(ctx, 'Try', op, t.account, t.amount);
        return reply(`${this.name}: held ${t.amount} on ${t.account}`, t.amount);
      }
      await this.mustExist(ctx.tx, t.account);
      await ctx.tx.query('INSERT INTO pending_credits (uid, branch, account, amount) VALUES ($1, $2, $3, $4)', [ctx.uid, ctx.branch, t.account, t.amount]);
      await audit(ctx, 'Try', op, t.account, t.amount);
      return reply(`${this.name}: credit of ${t.amount} to ${t.account} pending`, t.amount);
    },

    // TransOut debits the held amount; TransIn applies the pending credit.
    confirm: async (ctx) => {
      const { op, t } = this.of(ctx);
      const amount = amountOf(ctx.result, t);
      if (op === OP_TRANS_OUT) {
        await one(ctx.tx, 'UPDATE accounts SET balance = balance - $2, held = held - $2 WHERE id = $1', [t.account, amount]);
        await audit(ctx, 'Confirm', op, t.account, amount);
        return { message: `${this.name}: debited ${amount} from ${t.account}` };
      }
      const res = await ctx.tx.query<{ account: string; amount: string }>(
        'DELETE FROM pending_credits WHERE uid = $1 AND branch = $2 RETURNING account, amount',
        [ctx.uid, ctx.branch],
      );
      const credit = res.rows[0];
      // The barrier lets Confirm through only after a Try that took effect.
      if (!credit) throw new Error('no pending credit for this branch');
      const credited = Number(credit.amount);
      await one(ctx.tx, 'UPDATE accounts SET balance = balance + $2 WHERE id = $1', [credit.account, credited]);
      await audit(ctx, 'Confirm', op, credit.account, credited);
      return { message: `${this.name}: credited ${credited} to ${credit.account}` };
    },

    // TransOut releases the hold; TransIn drops the pending credit. The barrier
    // calls it only when the Try took effect (it answers the null compensation itself).
    cancel: async (ctx) => {
      const { op, t } = this.of(ctx);
      const amount = amountOf(ctx.result, t);
      if (op === OP_TRANS_OUT) await one(ctx.tx, 'UPDATE accounts SET held = held - $2 WHERE id = $1', [t.account, amount]);
      else await ctx.tx.query('DELETE FROM pending_credits WHERE uid = $1 AND branch = $2', [ctx.uid, ctx.branch]);
      await audit(ctx, 'Cancel', op, t.account, amount);
      return { message: `${this.name}: ${op} of ${amount} on ${t.account} cancelled` };
    },
  };

  readonly saga: SagaHandlers<pg.PoolClient> = {
    // TransOut debits (refused on insufficient funds); TransIn credits (refused only for an unknown account).
    execute: async (ctx) => {
      const { op, t } = this.of(ctx);
      if (op === OP_TRANS_OUT) {
        const n = await rows(ctx.tx, 'UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance - held >= $2', [t.account, t.amount]);
        if (n === 0) throw await this.refusal(ctx.tx, t);
      } else {
        const n = await rows(ctx.tx, 'UPDATE accounts SET balance = balance + $2 WHERE id = $1', [t.account, t.amount]);
        if (n === 0) throw new Refused(`${this.name}: no account ${JSON.stringify(t.account)}`);
      }
      await audit(ctx, 'Execute', op, t.account, t.amount);
      return reply(`${this.name}: ${op === OP_TRANS_OUT ? 'debited' : 'credited'} ${t.amount} on ${t.account}`, t.amount);
    },

    // TransOut credits the amount back; TransIn debits its credit back. The
    // barrier calls it only when the Execute took effect.
    compensate: async (ctx) => {
      const { op, t } = this.of(ctx);
      const amount = amountOf(ctx.result, t);
      if (op === OP_TRANS_OUT) await one(ctx.tx, 'UPDATE accounts SET balance = balance + $2 WHERE id = $1', [t.account, amount]);
      else {
        const n = await rows(ctx.tx, 'UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance - held >= $2', [t.account, amount]);
        if (n === 0) throw new Error(CREDIT_SPENT);
      }
      await audit(ctx, 'Compensate', op, t.account, amount);
      return { message: `${this.name}: ${op} of ${amount} on ${t.account} compensated` };
    },
  };

  /** The call's operation and payload; InvalidPayload (INVALID_ARGUMENT) when the bank can never serve it. */
  private of(ctx: Ctx): { op: Operation; t: Transfer } {
    return this.parse(ctx.operation, ctx.rawPayload);
  }

  /** Tells an unknown account from insufficient funds. */
  private async refusal(tx: pg.PoolClient, t: Transfer): Promise<Refused> {
    await this.mustExist(tx, t.account);
    return new Refused(`${this.name}: insufficient funds on ${t.account} for ${t.amount}`);
  }

  private async mustExist(tx: pg.PoolClient, account: string): Promise<void> {
    const res = await tx.query('SELECT 1 FROM accounts WHERE id = $1', [account]);
    if (res.rowCount === 0) throw new Refused(`${this.name}: no account ${JSON.stringify(account)}`);
  }
}

function reply(message: string, amount: number): HandlerResponse {
  return { message, data: { amount } };
}

async function audit(ctx: Ctx, method: string, op: Operation, account: string, amount: number): Promise<void> {
  await ctx.tx.query('INSERT INTO applied (uid, branch, method, operation, account, amount) VALUES ($1, $2, $3, $4, $5, $6)', [
    ctx.uid,
    ctx.branch,
    method,
    op,
    account,
    amount,
  ]);
}

async function rows(tx: pg.PoolClient, sql: string, params: unknown[]): Promise<number> {
  return (await tx.query(sql, params)).rowCount ?? 0;
}

/** An UPDATE that must change exactly one row (a retryable error otherwise). */
async function one(tx: pg.PoolClient, sql: string, params: unknown[]): Promise<void> {
  const n = await rows(tx, sql, params);
  if (n !== 1) throw new Error(`expected to update one account, updated ${n}`);
}

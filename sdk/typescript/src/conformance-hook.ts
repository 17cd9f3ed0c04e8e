/**
 * The ConformanceHook (proto/kubetx/conformance/v1/hook.proto) for a
 * TypeScript participant under the conformance kit (`kubetx-conformance`):
 * three small functions over the participant's own data, added to its
 * running gRPC server.
 *
 *   const p = await serveParticipant({ ..., barrier: new SqliteBarrier(db) });
 *   if (process.env.KUBETX_CONFORMANCE_HOOK === '1') addConformanceHook(p.server, {
 *     openAccount: (account, balance) => db.prepare('INSERT OR REPLACE INTO accounts ...').run(account, balance),
 *     readAccount: (account) => db.prepare('SELECT balance, held FROM accounts WHERE id = ?').get(account),
 *   });
 *
 * Serve it in test deployments only: it opens accounts and moves money.
 * Errors: `Refused` and `MessageRolledBack` (from the SDK's outbox) answer
 * FAILED_PRECONDITION, anything else UNAVAILABLE.
 */
import * as grpc from '@grpc/grpc-js';
import { ConformanceHookService } from './gen/kubetx/conformance/v1/hook.js';
import { Refused, statusOf } from './errors.js';
import { MessageRolledBack } from './outbox.js';

export interface HookAccount {
  balance: number;
  held: number;
}

export interface HookPrepareMessage {
  uid: string;
  namespace: string;
  name: string;
  account: string;
  amount: number;
  /** true: commit the local transaction (balance -= amount with the outbox row); false: roll it back. */
  commit: boolean;
}

export interface ConformanceHookHandlers {
  /** Creates the account, or resets it, with `balance` and nothing held. */
  openAccount(account: string, balance: number): unknown;
  /** The account as the participant's own store has it; undefined when there is none. */
  readAccount(account: string): HookAccount | undefined | Promise<HookAccount | undefined>;
  /** For a MessageSource; throw MessageRolledBack (or Refused) when a check-back already answered ROLLED_BACK. */
  prepareMessage?(req: HookPrepareMessage): unknown;
}

/** Adds the ConformanceHook service to `server` (it may already be listening). */
export function addConformanceHook(server: grpc.Server, handlers: ConformanceHookHandlers): void {
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      fn(call.request).then(
        (res) => callback(null, res),
        (err: unknown) => {
          const { code, details } = hookStatus(err);
          callback({ code, details, metadata: new grpc.Metadata() } as grpc.ServiceError, null);
        },
      );
    };
  server.addService(ConformanceHookService, {
    openAccount: unary(async (req: { account: string; balance: number }) => {
      await handlers.openAccount(req.account, req.balance);
      return {};
    }),
    readAccount: unary(async (req: { account: string }) => {
      const a = await handlers.readAccount(req.account);
      return a ? { found: true, balance: a.balance, held: a.held } : { found: false, balance: 0, held: 0 };
    }),
    prepareMessage: unary(async (req: { transactionUid: string; namespace: string; name: string; account: string; amount: number; commit: boolean }) => {
      if (!handlers.prepareMessage) throw new NotASource();
      await handlers.prepareMessage({ uid: req.transactionUid, namespace: req.namespace, name: req.name, account: req.account, amount: req.amount, commit: req.commit });
      return {};
    }),
  });
}

class NotASource extends Error {
  constructor() {
    super('PrepareMessage: this participant is no MessageSource');
  }
}

function hookStatus(err: unknown): { code: grpc.status; details: string } {
  if (err instanceof MessageRolledBack || err instanceof Refused) return { code: grpc.status.FAILED_PRECONDITION, details: err.message };
  if (err instanceof NotASource) return { code: grpc.status.UNIMPLEMENTED, details: err.message };
  return statusOf(err);
}

/**
 * The hook's account model in a small table of the participant's own SQLite
 * database, for a participant whose business tables cannot express
 * "balance and held" (write it through `ctx.tx` in the handlers, so it
 * commits with the barrier row):
 *
 *   kubetx_conformance_accounts(account TEXT PRIMARY KEY, balance INTEGER, held INTEGER)
 */
export interface SqliteHookAccounts {
  readonly table: string;
  /** The hook's openAccount/readAccount over the table. */
  handlers: Pick<ConformanceHookHandlers, 'openAccount' | 'readAccount'>;
  /** balance += amount (negative to debit) on the account, if there is one; true if it exists. */
  add(db: SqliteLike, account: string, amount: number): boolean;
}

/** The part of a better-sqlite3 Database this needs. */
export interface SqliteLike {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): { changes: number }; get(...params: unknown[]): unknown };
}

export function sqliteHookAccounts(db: SqliteLike, table = 'kubetx_conformance_accounts'): SqliteHookAccounts {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new Error(`invalid table name ${JSON.stringify(table)}`);
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (account TEXT PRIMARY KEY, balance INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0)`);
  return {
    table,
    handlers: {
      openAccount: (account, balance) => db.prepare(`INSERT OR REPLACE INTO ${table} (account, balance, held) VALUES (?, ?, 0)`).run(account, balance),
      readAccount: (account) => db.prepare(`SELECT balance, held FROM ${table} WHERE account = ?`).get(account) as HookAccount | undefined,
    },
    add: (tx, account, amount) => tx.prepare(`UPDATE ${table} SET balance = balance + ? WHERE account = ?`).run(amount, account).changes > 0,
  };
}

/**
 * The hook alone on its own port (the kit's `--hook host:port`), for a
 * participant whose server you cannot add a service to. Resolves with the
 * bound port and a stop function.
 */
export async function serveConformanceHook(
  address: string,
  handlers: ConformanceHookHandlers,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<{ port: number; stop(): Promise<void> }> {
  const server = new grpc.Server();
  addConformanceHook(server, handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return { port, stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

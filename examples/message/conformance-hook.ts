/**
 * The reliable-message example under the conformance kit
 * (`kubetx-conformance`, docs/participants.md). Test deployments only: opt
 * in with KUBETX_CONFORMANCE_HOOK=1 (server.ts).
 *
 *   order   (MessageSource) the kit checks its CheckPrepared, answered from
 *           the SDK outbox. The order table has no amounts, so the hook's
 *           accounts live in a small extra table of order.db
 *           (kubetx_conformance_accounts); PrepareMessage debits one in the
 *           same local transaction as the outbox row (SqliteOutbox.runLocalSync),
 *           exactly as placeOrder writes its order row.
 *   credit  (MessageReceiver) its own `accounts` table is the account model:
 *           account = user_id (the kit's account ids are decimal digits),
 *           balance = credit, nothing is ever held. Its hook is served on a
 *           port of its own (the kit's --hook), since the receiver's server is
 *           not reachable from here.
 *           Payload: --payload '{"orderId":1,"userId":$ACCOUNT,"credit":$AMOUNT}'.
 * The inventory receiver takes stock away on Deliver, the opposite of the
 * hook's "Deliver credits", so it serves no hook.
 */
import type Database from 'better-sqlite3';
import { sqliteHookAccounts, type ConformanceHookHandlers } from '../../sdk/typescript/src/index.js';
import type { OrderService } from './services.js';

export const CREDIT_CONFORMANCE_PAYLOAD = '{"orderId":1,"userId":$ACCOUNT,"credit":$AMOUNT}';

/** Thrown inside the local transaction to roll it back (PrepareMessage with commit=false). */
class LocalRollback extends Error {}

export function orderConformanceHook(order: OrderService): ConformanceHookHandlers {
  const accounts = sqliteHookAccounts(order.db);
  return {
    ...accounts.handlers,
    prepareMessage: (m) => {
      try {
        // Throws MessageRolledBack (→ FAILED_PRECONDITION) when a check-back already claimed the uid.
        order.outbox.runLocalSync({ uid: m.uid, namespace: m.namespace, name: m.name }, (db) => {
          accounts.add(db, m.account, -m.amount);
          if (!m.commit) throw new LocalRollback();
        });
      } catch (err) {
        if (!(err instanceof LocalRollback)) throw err;
      }
    },
  };
}

export function creditConformanceHook(db: Database.Database): ConformanceHookHandlers {
  const userId = (account: string) => {
    const n = Number(account);
    if (!Number.isSafeInteger(n)) throw new Error(`account ${account} is not an integer user id`);
    return n;
  };
  return {
    openAccount: (account, balance) => db.prepare(`INSERT OR REPLACE INTO accounts (user_id, credit) VALUES (?, ?)`).run(userId(account), balance),
    readAccount: (account) =>
      db.prepare(`SELECT credit AS balance, 0 AS held FROM accounts WHERE user_id = ?`).get(userId(account)) as { balance: number; held: number } | undefined,
  };
}

/**
 * The payment example under the conformance kit (`kubetx-conformance`,
 * docs/participants.md). Test deployments only: opt in with
 * KUBETX_CONFORMANCE_HOOK=1 or `server.ts --conformance-hook`.
 *
 * The hook's account model maps onto the inventory service's own `items`
 * table, whose Try/Confirm/Cancel and Execute/Compensate already move stock
 * the way hook.proto says (no extra table, no change to the handlers):
 *
 *   account  = an sku            balance = stock + frozen (owned, not sold)
 *   held     = frozen            Try freezes, Confirm sells, Cancel unfreezes;
 *                                Execute sells at once, Compensate returns it
 *
 * Payload for the kit: --payload '{"orderId":1,"sku":"$ACCOUNT","qty":$AMOUNT}'.
 * The other three services have nothing that holds and applies an amount,
 * so they serve no hook.
 */
import type Database from 'better-sqlite3';
import type { ConformanceHookHandlers } from '../../sdk/typescript/src/index.js';
import type { ServiceName } from './db.js';

export const PAYMENT_CONFORMANCE_PAYLOAD = '{"orderId":1,"sku":"$ACCOUNT","qty":$AMOUNT}';

/** The hook for `service`, or undefined when that service cannot express the account model. */
export function paymentConformanceHook(service: ServiceName, db: Database.Database): ConformanceHookHandlers | undefined {
  if (service !== 'inventory') return undefined;
  return {
    openAccount: (sku, balance) => db.prepare(`INSERT OR REPLACE INTO items (sku, stock, frozen, sold) VALUES (?, ?, 0, 0)`).run(sku, balance),
    readAccount: (sku) =>
      db.prepare(`SELECT stock + frozen AS balance, frozen AS held FROM items WHERE sku = ?`).get(sku) as { balance: number; held: number } | undefined,
  };
}

/** KUBETX_CONFORMANCE_HOOK=1 turns the hook on; anything else leaves it off. */
export function conformanceHookFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.KUBETX_CONFORMANCE_HOOK === '1';
}

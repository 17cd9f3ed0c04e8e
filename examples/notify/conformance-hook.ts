/**
 * The notify example's merchant under the conformance kit
 * (`kubetx-conformance`, docs/participants.md). Test deployments only: opt
 * in with KUBETX_CONFORMANCE_HOOK=1 or `merchant.ts --conformance-hook`.
 *
 * A merchant records notifications; nothing in it has a balance. So the
 * hook's accounts live in a small extra table of the merchant's database
 * (kubetx_conformance_accounts), and Deliver, when the hook is on, also
 * credits the payload's `account` by its `amount` through `ctx.tx`: in the
 * same barrier transaction as the notification row, so "credited once" is
 * exactly "recorded once".
 *
 * Payload: --payload '{"orderId":1,"result":"paid","account":"$ACCOUNT","amount":$AMOUNT}'.
 */
import type Database from 'better-sqlite3';
import { sqliteHookAccounts, type ConformanceHookHandlers } from '../../sdk/typescript/src/index.js';

export const MERCHANT_CONFORMANCE_PAYLOAD = '{"orderId":1,"result":"paid","account":"$ACCOUNT","amount":$AMOUNT}';

export interface MerchantHook {
  handlers: ConformanceHookHandlers;
  /** Inside Deliver's transaction: credits the payload's account, if it names one. */
  deliver(tx: Database.Database, payload: unknown): void;
}

export function merchantConformanceHook(db: Database.Database): MerchantHook {
  const accounts = sqliteHookAccounts(db);
  return {
    handlers: accounts.handlers,
    deliver: (tx, payload) => {
      const p = (payload ?? {}) as { account?: unknown; amount?: unknown };
      if (typeof p.account === 'string' && typeof p.amount === 'number') accounts.add(tx, p.account, p.amount);
    },
  };
}

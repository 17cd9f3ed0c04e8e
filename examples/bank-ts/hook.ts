/**
 * The conformance kit's test hook (proto/kubetx/conformance/v1/hook.proto) on
 * the accounts table, through the SDK's addConformanceHook. Served only with
 * --conformance-hook: it opens accounts and sets balances, which no production
 * bank should let a caller do. PrepareMessage stays UNIMPLEMENTED: the bank is
 * not a message source.
 */
import type pg from 'pg';
import { Refused, type ConformanceHookHandlers } from '../../sdk/typescript/src/index.js';

/** The operation the conformance kit sends; its semantics are TransOut's. */
export const CONFORMANCE_OPERATION = 'conformance';

export function bankHook(pool: pg.Pool): ConformanceHookHandlers {
  return {
    openAccount: async (account, balance) => {
      // Refused answers FAILED_PRECONDITION (the SDK's hook has no INVALID_ARGUMENT).
      if (!account || balance < 0) throw new Refused('account must be named and balance must not be negative');
      await pool.query(
        `INSERT INTO accounts (id, balance, held) VALUES ($1, $2, 0)
         ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance, held = 0`,
        [account, balance],
      );
    },
    readAccount: async (account) => {
      const res = await pool.query<{ balance: string; held: string }>('SELECT balance, held FROM accounts WHERE id = $1', [account]);
      const row = res.rows[0];
      return row ? { balance: Number(row.balance), held: Number(row.held) } : undefined;
    },
  };
}

/**
 * A bank's ledger, read from its own database (accounts, pending credits, the
 * handlers' `applied` audit, the kubetx_barrier table), and what the tests
 * judge on it: its bookkeeping, the balances, the effects per branch.
 */
import type pg from 'pg';

export interface Account {
  id: string;
  balance: number;
  held: number;
}

export interface Ledger {
  accounts: Map<string, Account>;
  pendingCredits: number;
  /** (uid, branch, method) → how many `applied` rows. */
  applied: Map<string, number>;
  /** (uid, branch, method) → the barrier row's origin. */
  barrier: Map<string, 'call' | 'blocker'>;
}

/** A bank's ledger, read from its own database. */
export async function readLedger(pool: pg.Pool): Promise<Ledger> {
  const acc = await pool.query<{ id: string; balance: string; held: string }>('SELECT id, balance, held FROM accounts');
  const pending = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pending_credits');
  const applied = await pool.query<{ uid: string; branch: string; method: string; n: number }>(
    'SELECT uid, branch, method, count(*)::int AS n FROM applied GROUP BY uid, branch, method',
  );
  const barrier = await pool.query<{ uid: string; branch: string; method: string; origin: 'call' | 'blocker' }>('SELECT uid, branch, method, origin FROM kubetx_barrier');
  return {
    accounts: new Map(acc.rows.map((r) => [r.id, { id: r.id, balance: Number(r.balance), held: Number(r.held) }])),
    pendingCredits: pending.rows[0]!.n,
    applied: new Map(applied.rows.map((r) => [`${r.uid}/${r.branch}/${r.method}`, r.n])),
    barrier: new Map(barrier.rows.map((r) => [`${r.uid}/${r.branch}/${r.method}`, r.origin])),
  };
}

/**
 * What is wrong with a ledger's bookkeeping, as messages (none = sound):
 * money held or credits pending, an effect applied more than once, an effect
 * without its barrier row, a barrier row of a call without its effect (but for
 * null compensations: a Cancel/Compensate whose Try/Execute is a blocker).
 */
export function ledgerProblems(bank: string, l: Ledger): string[] {
  const out: string[] = [];
  for (const a of l.accounts.values()) if (a.held !== 0) out.push(`${bank}/${a.id} still holds ${a.held}`);
  if (l.pendingCredits !== 0) out.push(`${bank}: ${l.pendingCredits} pending credits left`);
  for (const [k, n] of l.applied) {
    if (n !== 1) out.push(`${bank}: ${k} applied ${n} times`);
    if (l.barrier.get(k) !== 'call') out.push(`${bank}: applied ${k} without a barrier row of origin call (${l.barrier.get(k)})`);
  }
  for (const [k, origin] of l.barrier) {
    if (origin !== 'call') continue;
    const [u, b, m] = k.split('/');
    const forward = m === 'Cancel' ? 'Try' : m === 'Compensate' ? 'Execute' : undefined;
    const nullCompensation = forward !== undefined && l.barrier.get(`${u}/${b}/${forward}`) === 'blocker';
    if (l.applied.has(k) === nullCompensation) out.push(`${bank}: barrier row ${k} ${nullCompensation ? 'is a null compensation but was applied' : 'has no applied effect'}`);
  }
  return out;
}

/** The methods applied per "<uid>/<branch>", sorted, from one ledger. */
export function effectsByBranch(l: Ledger): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of l.applied.keys()) {
    const [u, b, m] = k.split('/');
    const key = `${u}/${b}`;
    out.set(key, [...(out.get(key) ?? []), m!].sort());
  }
  return out;
}

/** The methods applied per "<transaction name>/<branch>", from one ledger (uids named by `uidToName`). */
export function effectsByTransfer(l: Ledger, uidToName: Map<string, string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, methods] of effectsByBranch(l)) {
    const [u, b] = k.split('/');
    out.set(`${uidToName.get(u!)}/${b}`, methods);
  }
  return out;
}

export interface BanksRead<B extends string> {
  ledgers: Record<B, Ledger>;
  /** "<bank>/<account>" → balance. */
  balances: Record<string, number>;
  /** The sum of all balances. */
  total: number;
  /** ledgerProblems of every bank. */
  problems: string[];
  /** "<transaction name>/<branch>" → the methods applied, over all banks. */
  effects: Map<string, string[]>;
}

/** Reads the ledger of every bank (name → pool) and sums it up. */
export async function readBanks<B extends string>(pools: Record<B, pg.Pool>, uidToName: Map<string, string>): Promise<BanksRead<B>> {
  const out: BanksRead<B> = { ledgers: {} as Record<B, Ledger>, balances: {}, total: 0, problems: [], effects: new Map() };
  for (const bank of Object.keys(pools) as B[]) {
    const ledger = await readLedger(pools[bank]);
    out.ledgers[bank] = ledger;
    for (const a of ledger.accounts.values()) {
      out.balances[`${bank}/${a.id}`] = a.balance;
      out.total += a.balance;
    }
    out.problems.push(...ledgerProblems(bank, ledger));
    for (const [k, methods] of effectsByTransfer(ledger, uidToName)) out.effects.set(k, [...(out.effects.get(k) ?? []), ...methods].sort());
  }
  return out;
}

/**
 * Bank transfers as DistributedTransactions: TransOut from one bank's account,
 * TransIn to another's (a Saga's TransIns dependsOn its TransOut, so a credit
 * is undone only when the forward phase fails), the seeded plans of many
 * transfers, and what a transfer's outcome means for the balances and for the
 * effects each branch may have applied.
 */
import type { BranchSpec, DistributedTransaction, RetryPolicy } from '../../../src/api/types.js';

export type Mode = 'TCC' | 'Saga';

export interface Transfer<B extends string = string> {
  name: string;
  mode: Mode;
  from: { bank: B; account: string };
  to: { bank: B; account: string };
  amount: number;
}

/** The phase of a transfer that went through, and of one rolled back. */
export const committedPhase = (mode: Mode) => (mode === 'TCC' ? 'Committed' : 'Completed');
export const rolledBackPhase = (mode: Mode) => (mode === 'TCC' ? 'Aborted' : 'Compensated');

/** The message of a transfer whose TransOut the sending bank refused for want of funds. */
export const REFUSED_FOR_FUNDS = /branch out: (Try|Execute) refused: ABORTED: .*insufficient funds/;

export const RETRY: RetryPolicy = { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 };

export interface BankBranch {
  name: string;
  address: string;
  operation: 'TransOut' | 'TransIn';
  payload: unknown;
  dependsOn?: string[];
}

export interface BankTxOptions {
  name: string;
  namespace: string;
  mode: Mode;
  timeout: string;
  /** @default RETRY */
  retry?: RetryPolicy;
  branches: BankBranch[];
}

/** A DistributedTransaction over bank branches (callTimeout 5s each). */
export function bankTx(o: BankTxOptions): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: o.name, namespace: o.namespace } as DistributedTransaction['metadata'],
    spec: {
      mode: o.mode,
      timeout: o.timeout,
      retry: o.retry ?? RETRY,
      branches: o.branches.map(
        (b): BranchSpec => ({
          name: b.name,
          endpoint: { address: b.address },
          operation: b.operation,
          payload: b.payload,
          callTimeout: '5s',
          ...(b.dependsOn ? { dependsOn: b.dependsOn } : {}),
        }),
      ),
    },
  };
}

export interface TransferTxOptions<B extends string> {
  namespace: string;
  /** The address of each bank. */
  address: (bank: B) => string;
  timeout: string;
  retry?: RetryPolicy;
  /** @default { account, amount: t.amount } */
  payload?: (side: Transfer<B>['from']) => unknown;
}

/** A transfer as a transaction of two branches, "out" (TransOut) and "in" (TransIn, after "out" in a Saga). */
export function transferTx<B extends string>(t: Transfer<B>, o: TransferTxOptions<B>): DistributedTransaction {
  const payload = o.payload ?? ((side) => ({ account: side.account, amount: t.amount }));
  return bankTx({
    name: t.name,
    namespace: o.namespace,
    mode: t.mode,
    timeout: o.timeout,
    retry: o.retry,
    branches: [
      { name: 'out', address: o.address(t.from.bank), operation: 'TransOut', payload: payload(t.from) },
      { name: 'in', address: o.address(t.to.bank), operation: 'TransIn', payload: payload(t.to), ...(t.mode === 'Saga' ? { dependsOn: ['out'] } : {}) },
    ],
  });
}

export interface SeededPlanOptions<B extends string> {
  seed: number;
  count: number;
  /** The two banks: transfers 4k and 4k+1 go from the first to the second, 4k+2 and 4k+3 back. */
  banks: [B, B];
  /** Senders only send and receivers only receive, so a compensated Saga TransIn always finds its credit unspent. */
  accounts: Record<B, { senders: string[]; receivers: string[] }>;
  /** Every n-th transfer asks for `overBalance`, more than any account holds. */
  refusedEvery: number;
  overBalance: number;
}

/** `count` transfers, TCC and Saga by turns, of deterministic pseudo-random amounts (so a failure can be replayed). */
export function seededPlan<B extends string>(o: SeededPlanOptions<B>): Array<Transfer<B>> {
  let seed = o.seed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  return Array.from({ length: o.count }, (_, i): Transfer<B> => {
    const [fromBank, toBank] = i % 4 < 2 ? o.banks : [o.banks[1], o.banks[0]];
    const senders = o.accounts[fromBank].senders;
    const receivers = o.accounts[toBank].receivers;
    return {
      name: `transfer-${String(i).padStart(2, '0')}`,
      mode: i % 2 === 0 ? 'TCC' : 'Saga',
      from: { bank: fromBank, account: senders[Math.floor(i / 4) % senders.length]! },
      to: { bank: toBank, account: receivers[i % receivers.length]! },
      amount: i % o.refusedEvery === o.refusedEvery - 1 ? o.overBalance : 50 + rand(250),
    };
  });
}

/** Each of `accounts` with `balance`, as openAccounts takes them. */
export const withBalance = (accounts: string[], balance: number): Record<string, number> => Object.fromEntries(accounts.map((a) => [a, balance]));

/** The opening balances of banks whose accounts are senders and receivers (as seededPlan takes them). */
export function sendersAndReceivers<B extends string>(accounts: Record<B, { senders: string[]; receivers: string[] }>, opening: { sender: number; receiver: number }): Record<B, Record<string, number>> {
  const out = {} as Record<B, Record<string, number>>;
  for (const b of Object.keys(accounts) as B[]) out[b] = { ...withBalance(accounts[b].senders, opening.sender), ...withBalance(accounts[b].receivers, opening.receiver) };
  return out;
}

/** "<bank>/<account>" → balance: the opening balances, minus what the `committed` transfers took out, plus what they put in. */
export function expectedBalances<B extends string>(opening: Record<B, Record<string, number>>, committed: Array<Transfer<B>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const bank of Object.keys(opening) as B[]) for (const [a, balance] of Object.entries(opening[bank])) out[`${bank}/${a}`] = balance;
  for (const t of committed) {
    out[`${t.from.bank}/${t.from.account}`]! -= t.amount;
    out[`${t.to.bank}/${t.to.account}`]! += t.amount;
  }
  return out;
}

/** The sum of all opening balances. */
export const openingTotal = (opening: Record<string, Record<string, number>>) =>
  Object.values(opening).reduce((s, accounts) => s + Object.values(accounts).reduce((t, n) => t + n, 0), 0);

/**
 * What each branch of a two-branch transfer may have applied, given its phase:
 * a committed TCC Try and Confirm, a completed Saga Execute; a rolled-back one
 * nothing, or its forward step and that step's undoing.
 */
export function allowedEffects(mode: Mode, phase: string | undefined): string[][] {
  if (mode === 'TCC') return phase === 'Committed' ? [['Confirm', 'Try']] : [[], ['Cancel', 'Try']];
  return phase === 'Completed' ? [['Execute']] : [[], ['Compensate', 'Execute']];
}

/** Every branch of `transfers` whose effects ("<name>/<branch>" → methods) are not allowed by its phase, as messages (none = all as the outcome says). */
export function effectProblems(transfers: Transfer[], phase: Map<string, string>, effects: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const t of transfers) {
    for (const branch of ['out', 'in']) {
      const got = effects.get(`${t.name}/${branch}`) ?? [];
      const allowed = allowedEffects(t.mode, phase.get(t.name));
      if (!allowed.some((a) => a.join() === got.join())) out.push(`${t.name}/${branch} (${phase.get(t.name)}): applied [${got}], want one of ${JSON.stringify(allowed)}`);
    }
  }
  return out;
}

/** Phase, message and uid of each transaction by name, and name by uid. */
export function outcomes(final: DistributedTransaction[]) {
  return {
    phase: new Map(final.map((t) => [t.metadata.name!, t.status?.phase ?? ''])),
    message: new Map(final.map((t) => [t.metadata.name!, t.status?.message ?? ''])),
    uidToName: new Map(final.map((t) => [t.metadata.uid!, t.metadata.name!])),
  };
}

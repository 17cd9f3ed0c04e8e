/**
 * What a rule works with: fresh accounts on the participant (through its
 * ConformanceHook), transactions with fresh uids, calls shaped as the
 * operator sends them, and checks that end the rule with a reason.
 *
 * A rule is a small async function: it returns its PASS reason, or throws
 * `RuleFailed` (via the `expect…` helpers) with its FAIL reason. "Applied
 * once" is always read back from the participant's own data (ReadAccount),
 * never trusted from its answers.
 */
import { randomInt, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { BranchRequest, BranchResponse } from '../gen/kubetx/v1/participant.js';
import { CheckPreparedResponse_State } from '../gen/kubetx/v1/participant.js';
import { codeName, type BranchMethod, type CallResult, type Channel, type Connections } from './client.js';
import { renderPayload, type KitOptions, type ServiceGroup } from './flags.js';

/** Every account opens with this balance; every call moves AMOUNT; a refused call asks for TOO_MUCH. */
export const OPENING = 100;
export const AMOUNT = 10;
export const TOO_MUCH = 1000;
export const NAMESPACE = 'conformance';
export const BRANCH = 'kit';
/** How often a compensation is repeated until it answers OK. */
export const UNTIL_OK_ATTEMPTS = 20;
/** BranchResponse.data limit (the operator keeps it in status). */
export const MAX_DATA_BYTES = 4096;

export class RuleFailed extends Error {
  override readonly name = 'RuleFailed';
}

export function fail(reason: string): never {
  throw new RuleFailed(reason);
}

export interface Rule {
  id: string;
  group: ServiceGroup;
  /** What is called and what is checked (the docs' rule table). */
  checks: string;
  /** Resolves to the PASS reason; throws RuleFailed with the FAIL reason. */
  run(kit: Kit): Promise<string>;
}

/** One transaction of the kit: a fresh uid, a name kit-<n>, an account and an amount. */
export interface Txn {
  uid: string;
  name: string;
  account: string;
  amount: number;
}

export interface Account {
  balance: number;
  held: number;
}

export interface SecondPhaseRefusal {
  rule: string;
  method: BranchMethod;
  code: string;
  details: string;
}

const SECOND_PHASE: ReadonlySet<BranchMethod> = new Set(['Confirm', 'Cancel', 'Compensate', 'Deliver']);
const REFUSALS: ReadonlySet<number> = new Set([grpc.status.ABORTED, grpc.status.FAILED_PRECONDITION]);

export function isRefusal(code: number): boolean {
  return REFUSALS.has(code);
}

export class Kit {
  /** The rule running now (rules run one after another). */
  rule = '';
  /** Confirm/Cancel/Compensate/Deliver answered ABORTED or FAILED_PRECONDITION, collected over all rules. */
  readonly secondPhaseRefusals: SecondPhaseRefusal[] = [];
  /** Second-phase calls made, per method (so the collecting rules can say how many they saw). */
  readonly secondPhaseCalls = new Map<BranchMethod, number>();
  private names = 0;

  constructor(
    readonly options: KitOptions,
    readonly conns: Connections,
  ) {}

  get channels(): Channel[] {
    return this.conns.target;
  }

  /** A fresh account id: 15 decimal digits, so it fits a JSON string and an integer column alike. */
  private newAccountId(): string {
    return `${randomInt(1, 10)}${String(randomInt(0, 1e7)).padStart(7, '0')}${String(randomInt(0, 1e7)).padStart(7, '0')}`;
  }

  /** Opens a fresh account with `balance` (default OPENING) and checks the hook reads it back. */
  async account(balance = OPENING): Promise<string> {
    const account = this.newAccountId();
    const r = await this.conns.hook.openAccount({ account, balance });
    if (r.code !== grpc.status.OK) fail(`hook OpenAccount answered ${codeName(r.code)}: ${r.details}`);
    await this.expectAccount(account, { balance, held: 0 }, 'OpenAccount');
    return account;
  }

  async read(account: string): Promise<Account> {
    const r = await this.conns.hook.readAccount(account);
    if (r.code !== grpc.status.OK || !r.response) fail(`hook ReadAccount(${account}) answered ${codeName(r.code)}: ${r.details}`);
    if (!r.response.found) fail(`hook ReadAccount(${account}): account not found`);
    return { balance: Number(r.response.balance), held: Number(r.response.held) };
  }

  /** Reads the account and fails unless it shows `want`; `after` says what happened before. */
  async expectAccount(account: string, want: Account, after: string): Promise<void> {
    const got = await this.read(account);
    if (got.balance !== want.balance || got.held !== want.held) {
      fail(`after ${after}: account ${account} shows balance=${got.balance} held=${got.held}, want balance=${want.balance} held=${want.held}`);
    }
  }

  txn(account: string, amount = AMOUNT): Txn {
    this.names++;
    return { uid: randomUUID(), name: `kit-${this.names}`, account, amount };
  }

  payload(t: Txn): Buffer {
    return Buffer.from(renderPayload(this.options.payload, t.account, t.amount), 'utf8');
  }

  request(t: Txn, opts: { attempt?: number; result?: Buffer } = {}): BranchRequest {
    return {
      transactionUid: t.uid,
      namespace: NAMESPACE,
      name: t.name,
      branch: BRANCH,
      operation: 'conformance',
      payload: this.payload(t),
      attempt: opts.attempt ?? 1,
      result: opts.result ?? Buffer.alloc(0),
    };
  }

  /** One branch call as the operator makes it; second-phase refusals are collected. */
  async call(
    method: BranchMethod,
    t: Txn,
    opts: { attempt?: number; result?: Buffer; channel?: Channel } = {},
  ): Promise<CallResult<BranchResponse>> {
    const channel = opts.channel ?? this.channels[0]!;
    const r = await channel.branch(method, this.request(t, opts), this.options.deadlineMs);
    if (SECOND_PHASE.has(method)) {
      this.secondPhaseCalls.set(method, (this.secondPhaseCalls.get(method) ?? 0) + 1);
      if (isRefusal(r.code)) this.secondPhaseRefusals.push({ rule: this.rule, method, code: codeName(r.code), details: r.details });
    }
    if (r.code === grpc.status.OK && r.response && (method === 'Try' || method === 'Execute') && r.response.data.length > MAX_DATA_BYTES) {
      fail(`${method} returned ${r.response.data.length} bytes of data, over the ${MAX_DATA_BYTES}-byte limit (the operator treats that as a failure)`);
    }
    return r;
  }

  /** The call, which must answer OK; resolves to its response. */
  async ok(method: BranchMethod, t: Txn, opts: { attempt?: number; result?: Buffer; channel?: Channel } = {}): Promise<BranchResponse> {
    const r = await this.call(method, t, opts);
    expectOk(r, `${method}${opts.attempt && opts.attempt > 1 ? ` (attempt ${opts.attempt})` : ''}`);
    return r.response!;
  }

  /** Repeats a second-phase call, as the operator would, until it answers OK (at most UNTIL_OK_ATTEMPTS calls). */
  async untilOk(method: BranchMethod, t: Txn, opts: { result?: Buffer; channel?: Channel; firstAttempt?: number } = {}): Promise<BranchResponse> {
    const first = opts.firstAttempt ?? 1;
    let last: CallResult<BranchResponse> | undefined;
    for (let n = 0; n < UNTIL_OK_ATTEMPTS; n++) {
      last = await this.call(method, t, { ...opts, attempt: first + n });
      if (last.code === grpc.status.OK) return last.response!;
      await sleep(Math.min(20 * (n + 1), 200));
    }
    return fail(`${method} of ${t.uid} still answers ${codeName(last!.code)} after ${UNTIL_OK_ATTEMPTS} attempts: ${last!.details}`);
  }

  async checkPrepared(t: Txn, channel?: Channel): Promise<CallResult<CheckPreparedResponse_State>> {
    return (channel ?? this.channels[0]!).checkPrepared(
      { transactionUid: t.uid, namespace: NAMESPACE, name: t.name, operation: 'conformance', payload: this.payload(t) },
      this.options.deadlineMs,
    );
  }
}

export function expectOk<T>(r: CallResult<T>, what: string): asserts r is CallResult<T> & { response: T } {
  if (r.code !== grpc.status.OK) fail(`${what} answered ${codeName(r.code)}: ${r.details}`);
}

/** A business "no": ABORTED or FAILED_PRECONDITION, nothing else. */
export function expectRefused<T>(r: CallResult<T>, what: string): void {
  if (r.code === grpc.status.OK) fail(`${what} answered OK, want a refusal (ABORTED or FAILED_PRECONDITION)`);
  if (!isRefusal(r.code)) {
    fail(`${what} answered ${codeName(r.code)} (${r.details}), want ABORTED or FAILED_PRECONDITION: the operator would retry it instead of rolling back`);
  }
}

/** A repeat must answer as the first call did: same message, byte-identical data. */
export function expectSameAnswer(first: BranchResponse, again: BranchResponse, what: string): void {
  if (first.message !== again.message) fail(`${what}: the repeat answered message ${JSON.stringify(again.message)}, the first ${JSON.stringify(first.message)}`);
  if (!Buffer.from(first.data).equals(Buffer.from(again.data))) {
    fail(`${what}: the repeat answered different data (${preview(again.data)} vs ${preview(first.data)})`);
  }
}

export function preview(data: Uint8Array): string {
  const s = Buffer.from(data).toString('utf8');
  return s.length > 40 ? `${JSON.stringify(s.slice(0, 40))}…` : JSON.stringify(s);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

export function stateName(s: CheckPreparedResponse_State): string {
  switch (s) {
    case CheckPreparedResponse_State.STATE_COMMITTED:
      return 'COMMITTED';
    case CheckPreparedResponse_State.STATE_ROLLED_BACK:
      return 'ROLLED_BACK';
    case CheckPreparedResponse_State.STATE_UNKNOWN:
      return 'UNKNOWN';
    default:
      return `state ${String(s)}`;
  }
}

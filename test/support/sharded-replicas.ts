/**
 * Sharded active-active operator replicas for integration tests (--shards,
 * docs/scaling.md): start R replicas with distinct identities (POD_NAME), a
 * Lease prefix of their own and short timings; read the shard Leases (who
 * holds which shard); wait until the assignment is the fair share of the live
 * replicas, judged from the Leases and from each replica's own
 * kubetx_shards_owned (polled with a deadline, never slept for); kill, freeze
 * and resume replicas.
 *
 * Also what the sharding tests read back from the replicas: which replica
 * finished (and decided) each transaction, from their log lines, and each
 * replica's watch-event counts from /metrics.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { dbPathIn } from '../../examples/payment/db.js';
import { clearFaults, setFault } from '../../examples/payment/faults.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { shardOfUid } from '../../src/controller/sharding/hash-range.js';
import { HistoryRecorder } from '../chaos/history.js';
import { checkHistories, checkPayments, type PaymentTx } from '../chaos/invariants.js';
import { eventually, freshNamespace } from './env.js';
import { counterValue, startOperator, type OperatorProcess } from './operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from './payment.js';

const SHARD_SET_LABEL = 'kubetx.io/shard-set';
const LEASE_KIND_LABEL = 'kubetx.io/lease-kind';

export interface ShardTimings {
  leaseMs: number;
  renewDeadlineMs: number;
  retryMs: number;
}

/** Short enough for tests, long enough for three replicas and the test itself on 2 cores. */
export const TEST_TIMINGS: ShardTimings = { leaseMs: 4000, renewDeadlineMs: 3000, retryMs: 500 };

export interface ShardedReplicasOptions {
  kubeconfig: string;
  kc: k8s.KubeConfig;
  /** Transaction namespaces the replicas watch (--namespaces). */
  namespaces: string[];
  /** Where the Leases live (--leader-election-namespace): one per test, so tests never see each other's Leases. */
  leaseNamespace: string;
  shards: number;
  /** @default a fresh "shard-xxxxxx" */
  prefix?: string;
  /** @default "auto" */
  filter?: 'auto' | 'server' | 'client';
  /** @default TEST_TIMINGS */
  timings?: ShardTimings;
  /** More operator flags for every replica. */
  args?: string[];
}

export type Holders = Map<number, string | undefined>;

export interface Assignment {
  holders: Holders;
  /** identity → shards it holds (from the Leases). */
  counts: Record<string, number>;
  /** When the poll that saw it began (ms since epoch). */
  at: number;
}

/** What every replica computes: members sorted by identity, the first `shards mod members` get one more. */
export function fairShares(identities: readonly string[], shards: number): Record<string, number> {
  const sorted = [...new Set(identities)].sort();
  const base = Math.floor(shards / sorted.length);
  return Object.fromEntries(sorted.map((id, i) => [id, base + (i < shards % sorted.length ? 1 : 0)]));
}

const ms = (v: number) => `${v}ms`;

export class ShardedReplicas {
  readonly prefix: string;
  readonly timings: ShardTimings;
  readonly shards: number;
  readonly replicas = new Map<string, OperatorProcess>();
  /** Killed or frozen: not counted as live. */
  private readonly down = new Set<string>();
  private readonly coordination: k8s.CoordinationV1Api;

  get leaseNamespace(): string {
    return this.opts.leaseNamespace;
  }

  constructor(private readonly opts: ShardedReplicasOptions) {
    this.prefix = opts.prefix ?? `shard-${randomBytes(3).toString('hex')}`;
    this.timings = opts.timings ?? TEST_TIMINGS;
    this.shards = opts.shards;
    this.coordination = opts.kc.makeApiClient(k8s.CoordinationV1Api);
  }

  /** Starts replicas with these identities, together (each resolves once its controller started). */
  async start(...ids: string[]): Promise<OperatorProcess[]> {
    const { leaseMs, renewDeadlineMs, retryMs } = this.timings;
    return Promise.all(
      ids.map(async (id) => {
        const op = await startOperator({
          kubeconfig: this.opts.kubeconfig,
          namespaces: this.opts.namespaces,
          args: [
            '--shards', String(this.shards),
            '--shard-filter', this.opts.filter ?? 'auto',
            '--shard-lease-prefix', this.prefix,
            '--leader-election-namespace', this.opts.leaseNamespace,
            '--lease-duration', ms(leaseMs), '--renew-deadline', ms(renewDeadlineMs), '--retry-period', ms(retryMs),
            ...(this.opts.args ?? []),
          ],
          env: { POD_NAME: id, POD_NAMESPACE: this.opts.leaseNamespace },
        });
        this.replicas.set(id, op);
        this.down.delete(id);
        return op;
      }),
    );
  }

  op(id: string): OperatorProcess {
    const op = this.replicas.get(id);
    if (!op) throw new Error(`no replica ${id}`);
    return op;
  }

  live(): string[] {
    return [...this.replicas.keys()].filter((id) => !this.down.has(id)).sort();
  }

  /** Ends a replica (SIGKILL: no goodbye, its Leases must expire; SIGTERM: it hands its shards back). */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.down.add(id);
    await this.op(id).kill(signal);
  }

  /** SIGSTOP: the process keeps its sockets and state but runs nothing (its /metrics does not answer). */
  freeze(id: string): void {
    this.down.add(id);
    this.op(id).child.kill('SIGSTOP');
  }

  resume(id: string): void {
    this.op(id).child.kill('SIGCONT');
    this.down.delete(id);
  }

  async stopAll(): Promise<void> {
    for (const [id, op] of this.replicas) {
      if (op.child.exitCode === null && op.child.signalCode === null) op.child.kill('SIGCONT');
      await op.kill('SIGKILL');
      this.down.add(id);
    }
  }

  private async leases(kind: 'shard' | 'replica'): Promise<k8s.V1Lease[]> {
    const res = await this.coordination.listNamespacedLease({
      namespace: this.opts.leaseNamespace,
      labelSelector: `${SHARD_SET_LABEL}=${this.prefix},${LEASE_KIND_LABEL}=${kind}`,
    });
    return res.items;
  }

  /** shard → the holderIdentity of its Lease (undefined: no Lease, or released). */
  async holders(): Promise<Holders> {
    const byName = new Map((await this.leases('shard')).map((l) => [l.metadata?.name, l.spec?.holderIdentity || undefined]));
    const holders: Holders = new Map();
    for (let s = 0; s < this.shards; s++) holders.set(s, byName.get(`${this.prefix}-${s}`));
    return holders;
  }

  /** Identities named by the membership Leases. */
  async members(): Promise<string[]> {
    return (await this.leases('replica')).map((l) => l.spec?.holderIdentity ?? '').sort();
  }

  /** The shard Leases themselves (for leaseTransitions and the like). */
  shardLeases(): Promise<k8s.V1Lease[]> {
    return this.leases('shard');
  }

  static counts(holders: Holders): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const h of holders.values()) if (h) counts[h] = (counts[h] ?? 0) + 1;
    return counts;
  }

  /** Polls the Leases until every shard is held by a live replica (no balance required): the end of a handover. */
  async waitUntilLiveHoldAll(timeoutMs = 30_000): Promise<Assignment> {
    return eventually('every shard held by a live replica', async () => {
      const at = Date.now();
      const holders = await this.holders();
      const live = new Set(this.live());
      return [...holders.values()].every((h) => h !== undefined && live.has(h)) ? { holders, counts: ShardedReplicas.counts(holders), at } : undefined;
    }, timeoutMs);
  }

  /**
   * Polls until the assignment is the fair share of the live replicas: every
   * shard held by a live replica, each holding exactly its share (so counts
   * differ by at most one), and each live replica's kubetx_shards_owned and
   * kubetx_shard_owned{shard} saying the same as the Leases.
   */
  async waitForBalance(timeoutMs = 30_000): Promise<Assignment> {
    let last = '';
    try {
      return await eventually('the fair-share assignment', async () => {
        const at = Date.now();
        const live = this.live();
        const want = fairShares(live, this.shards);
        const holders = await this.holders();
        const counts = ShardedReplicas.counts(holders);
        last = `leases ${JSON.stringify(counts)}, want ${JSON.stringify(want)}`;
        if (![...holders.values()].every((h) => h !== undefined && live.includes(h))) return undefined;
        if (!live.every((id) => counts[id] === want[id])) return undefined;
        for (const id of live) {
          const text = await this.op(id).metrics();
          const owned = counterValue(text, 'kubetx_shards_owned');
          last += `; ${id} says ${owned}`;
          if (owned !== want[id]) return undefined;
          for (const [s, h] of holders) if (counterValue(text, 'kubetx_shard_owned', { shard: String(s) }) !== (h === id ? 1 : 0)) return undefined;
        }
        return { holders, counts, at };
      }, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message} (last seen: ${last})`);
    }
  }

  /** The shard a transaction's uid falls in, and who holds it in `holders`. */
  ownerOf(uid: string, holders: Holders): string | undefined {
    return holders.get(shardOfUid(uid, this.shards));
  }

  /** Identities whose logs have `msg` for transaction `name` (one entry per line). */
  loggedBy(msg: string, name: string): string[] {
    const ids: string[] = [];
    for (const [id, op] of this.replicas) for (const l of op.lines) if (l.msg === msg && l.transaction === name) ids.push(id);
    return ids.sort();
  }

  /** One replica's watch deliveries and what it did, from its /metrics. */
  async counters(id: string): Promise<ReplicaCounters> {
    const text = await this.op(id).metrics();
    return {
      watchOwned: counterValue(text, 'kubetx_watch_events_total', { owned: 'true' }),
      watchNotOwned: counterValue(text, 'kubetx_watch_events_total', { owned: 'false' }),
      finished: counterValue(text, 'kubetx_transactions_total'),
      writesOk: counterValue(text, 'kubetx_status_writes_total', { result: 'ok' }),
      writesConflict: counterValue(text, 'kubetx_status_writes_total', { result: 'conflict' }),
      reconciles: counterValue(text, 'kubetx_reconcile_total'),
      shardsOwned: counterValue(text, 'kubetx_shards_owned'),
      replicasSeen: counterValue(text, 'kubetx_shard_replicas'),
      filterServer: counterValue(text, 'kubetx_shard_filter', { mode: 'server' }),
      filterClient: counterValue(text, 'kubetx_shard_filter', { mode: 'client' }),
    };
  }
}

export interface ReplicaCounters {
  /** kubetx_watch_events_total{owned="true"}. */
  watchOwned: number;
  /** kubetx_watch_events_total{owned="false"}. */
  watchNotOwned: number;
  /** kubetx_transactions_total (terminal outcomes this replica wrote). */
  finished: number;
  writesOk: number;
  writesConflict: number;
  reconciles: number;
  shardsOwned: number;
  replicasSeen: number;
  filterServer: number;
  filterClient: number;
}

// ---------------------------------------------------------------------------
// The tests both filters share (test/integration/sharding.test.ts with the
// server filter, sharding-client-filter.test.ts with the client filter).
// ---------------------------------------------------------------------------

export interface SuiteCluster {
  kc: k8s.KubeConfig;
  kubeconfig: string;
  /** The filter the replicas must report (undefined: a user's cluster, whatever it supports). */
  expectMode: 'server' | 'client' | undefined;
}

/** Payments (the seed's four branches, 1 unit each, so the 100 units of stock cover a test) created one by one. */
export async function createPayments(
  pay: PaymentServices,
  txs: ReturnType<typeof transactions>,
  o: { namespace: string; prefix: string; firstOrder: number; count: number; extra?: (tx: DistributedTransaction) => DistributedTransaction },
): Promise<Array<{ tx: PaymentTx; uid: string; createdAt: number }>> {
  const out: Array<{ tx: PaymentTx; uid: string; createdAt: number }> = [];
  for (let i = 0; i < o.count; i++) {
    const orderId = o.firstOrder + i;
    pay.addOrders([orderId]);
    const name = `${o.prefix}-${orderId}`;
    const body = payOrder(pay, { name, namespace: o.namespace, orderId, qty: 1, timeout: '5m' });
    const createdAt = Date.now();
    const made = await txs.create(o.extra ? o.extra(body) : body);
    out.push({ tx: { name, orderId, qty: 1, credit: 10 }, uid: made.metadata.uid, createdAt });
  }
  return out;
}

/** Polls until every named transaction is in one of `phases`; resolves with the server's objects. */
export async function untilAll(txs: ReturnType<typeof transactions>, namespace: string, names: string[], phases: string[], timeoutMs = 90_000): Promise<DistributedTransaction[]> {
  const want = new Set(phases);
  return eventually(`${names.length} transactions ${phases.join('|')}`, async () => {
    const byName = new Map((await txs.list(namespace)).map((t) => [t.metadata.name, t]));
    const got = names.map((n) => byName.get(n));
    return got.every((t) => t && want.has(t.status?.phase ?? '')) ? (got as DistributedTransaction[]) : undefined;
  }, timeoutMs);
}

export function describeShardingSuite(mode: 'server' | 'client', cluster: () => SuiteCluster): void {
  const SHARDS = 16;
  const ids = ['r1', 'r2', 'r3'];
  describe(`sharded replicas, ${mode} filter (${SHARDS} shards, lease 4s, renew 3s, retry 500ms)`, () => {
    let set: ShardedReplicas | undefined;
    let pay: PaymentServices | undefined;
    let history: HistoryRecorder | undefined;

    afterEach(async () => {
      history?.stop();
      history = undefined;
      await set?.stopAll();
      set = undefined;
      await pay?.stopAll();
      pay = undefined;
    });

    const threeReplicas = async (tag: string) => {
      const { kc, kubeconfig } = cluster();
      const namespace = await freshNamespace(kc, `shard-${tag}`);
      const leaseNamespace = await freshNamespace(kc, `lease-${tag}`);
      set = new ShardedReplicas({ kubeconfig, kc, namespaces: [namespace], leaseNamespace, shards: SHARDS });
      await set.start(...ids);
      const balanced = await set.waitForBalance();
      return { kc, namespace, leaseNamespace, set, balanced, txs: transactions(kc) };
    };

    it('3 replicas share 16 shards as 6/5/5, the same in the Leases and in each replica\'s metrics, with the expected filter', async () => {
      const { set: s, balanced } = await threeReplicas('share');
      expect(balanced.counts).toEqual({ r1: 6, r2: 5, r3: 5 });
      expect(await s.members()).toEqual(ids);
      for (const id of ids) {
        const c = await s.counters(id);
        expect(c.shardsOwned, id).toBe(balanced.counts[id]);
        expect(c.replicasSeen, id).toBe(3);
        const op = s.op(id);
        const line = await op.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('shard filter:'), 5_000);
        const expected = cluster().expectMode;
        if (expected) {
          expect(line.mode, id).toBe(expected);
          expect(line.msg, id).toEqual(expected === 'server' ? 'shard filter: the API server sends only owned shards (shardSelector)' : expect.stringMatching(/^shard filter: watching every transaction, filtering here/));
          expect(expected === 'server' ? [c.filterServer, c.filterClient] : [c.filterClient, c.filterServer], id).toEqual([1, 0]);
        }
        // Each shard a replica logged acquiring and still holds is one the Leases name it for.
        const acquired = new Set(op.lines.filter((l) => l.msg === 'acquired shard').map((l) => l.shard as number));
        for (const [shard, h] of balanced.holders) if (h === id) expect(acquired.has(shard), `${id} logged acquiring shard ${shard}`).toBe(true);
      }
    }, 90_000);

    it('each transaction is reconciled by the replica holding its shard, commits once, and the watch delivers what the filter says', async () => {
      const { namespace, set: s, balanced, txs } = await threeReplicas('events');
      pay = await startPayment();
      const before = pay.ledgers();
      const created = await createPayments(pay, txs, { namespace, prefix: 'ev', firstOrder: 2000, count: 60 });
      const objects = await untilAll(txs, namespace, created.map((c) => c.tx.name), ['Committed', 'Aborted', 'Failed']);
      expect(objects.map((o) => o.status?.phase)).toEqual(created.map(() => 'Committed'));
      // Nothing moved while they ran: the attribution below is against one assignment.
      expect(await s.holders()).toEqual(balanced.holders);

      const owner = new Map(created.map((c) => [c.tx.name, s.ownerOf(c.uid, balanced.holders)!]));
      const mine = (id: string) => created.filter((c) => owner.get(c.tx.name) === id);
      for (const c of created) {
        const o = owner.get(c.tx.name)!;
        // The log lines come after the write returns: wait for them rather than expect them already.
        await s.op(o).waitForLog((l) => l.msg === 'transaction finished' && l.transaction === c.tx.name, 10_000);
        expect(s.loggedBy('decision persisted', c.tx.name), c.tx.name).toEqual([o]);
        expect(s.loggedBy('transaction finished', c.tx.name), c.tx.name).toEqual([o]);
      }
      const report: string[] = [];
      for (const id of ids) {
        const c = await s.counters(id);
        const own = mine(id).length;
        report.push(`${id}: ${balanced.counts[id]} shards, ${own} transactions, watch owned=true ${c.watchOwned} owned=false ${c.watchNotOwned}, finished ${c.finished}, status writes ok ${c.writesOk} conflict ${c.writesConflict}`);
        expect(c.finished, `${id} kubetx_transactions_total`).toBe(own);
        // Each of its objects was delivered at least once (created, then its status writes).
        expect(c.watchOwned, id).toBeGreaterThanOrEqual(own);
        if (mode === 'server' && cluster().expectMode === 'server') expect(c.watchNotOwned, `${id}: objects outside its shards`).toBe(0);
        // The client filter: every replica's watch sees every other replica's objects too.
        if (mode === 'client') expect(c.watchNotOwned, id).toBeGreaterThanOrEqual(created.length - own);
      }
      console.log(`[sharding ${mode}] 60 transactions: ${report.join('; ')}`);
      expect(ids.every((id) => mine(id).length > 0)).toBe(true);
      const check = checkPayments({ before, after: pay.ledgers(), created: created.map((c) => c.tx), objects });
      expect(check.violations).toEqual([]);
      expect(check.committed).toBe(60);
    }, 150_000);

    it('a SIGKILLed replica\'s shards move to the others within the lease duration and a few retry periods; its transactions commit', async () => {
      const { kc, namespace, set: s, balanced, txs } = await threeReplicas('kill');
      const { leaseMs, retryMs } = s.timings;
      pay = await startPayment();
      history = new HistoryRecorder(kc, namespace);
      await history.start();
      const before = pay.ledgers();
      const victim = 'r2';
      const inVictim = (uid: string) => s.ownerOf(uid, balanced.holders) === victim;
      // Every Confirm on credit fails until the kill: the transactions are decided and stay in flight.
      setFault(dbPathIn(pay.dir, 'credit'), { method: 'Confirm', mode: 'fail', remaining: 100_000 });
      const early = await createPayments(pay, txs, { namespace, prefix: 'pre', firstOrder: 3000, count: 24 });
      expect(early.filter((c) => inVictim(c.uid)).length, 'transactions in the victim\'s shards').toBeGreaterThan(0);
      await untilAll(txs, namespace, early.map((c) => c.tx.name), ['Confirming'], 60_000);
      // Each replica's in-flight gauge counts the stuck transactions of its own shards only (the client filter's cache holds them all).
      for (const id of s.live()) {
        const mine = early.filter((c) => s.ownerOf(c.uid, balanced.holders) === id).length;
        await eventually(`${id} kubetx_transactions_in_flight = ${mine}`, async () => (counterValue(await s.op(id).metrics(), 'kubetx_transactions_in_flight', { phase: 'Confirming' }) === mine ? true : undefined), 10_000);
      }

      const killedAt = Date.now();
      await s.kill(victim, 'SIGKILL');
      clearFaults(dbPathIn(pay.dir, 'credit'));
      // Right after the kill, while nobody holds the victim's shards.
      const late = await createPayments(pay, txs, { namespace, prefix: 'post', firstOrder: 4000, count: 24 });
      const handover = await s.waitUntilLiveHoldAll(leaseMs + 20 * retryMs);
      const handoverMs = handover.at - killedAt;
      console.log(`[sharding ${mode}] SIGKILL of ${victim} (${balanced.counts[victim]} shards) → every shard held by a live replica after ${handoverMs} ms (lease ${leaseMs} ms, retry ${retryMs} ms)`);
      // Not before the Leases expired (last renewed at most one retry period before the kill) ...
      expect(handoverMs).toBeGreaterThanOrEqual(leaseMs - retryMs - 500);
      // ... and within the lease duration plus a few retry periods.
      expect(handoverMs).toBeLessThanOrEqual(leaseMs + 4 * retryMs + 2000);
      const after = await s.waitForBalance();
      expect(after.counts).toEqual({ r1: 8, r3: 8 });
      // The survivors only took the victim's shards: theirs did not move.
      for (const [shard, h] of balanced.holders) if (h !== victim) expect(after.holders.get(shard), `shard ${shard}`).toBe(h);

      const all = [...early, ...late];
      expect(late.filter((c) => inVictim(c.uid)).length, 'created in the victim\'s shards after the kill').toBeGreaterThan(0);
      const objects = await untilAll(txs, namespace, all.map((c) => c.tx.name), ['Committed', 'Aborted', 'Failed']);
      expect(objects.map((o) => o.status?.phase)).toEqual(all.map(() => 'Committed'));
      for (const c of all.filter((x) => inVictim(x.uid))) {
        // Finished once, by a survivor: the one that took the orphaned shard, or the one it handed the shard on to (plan.ts).
        const by = await eventually(`${c.tx.name} finished`, async () => {
          const who = s.loggedBy('transaction finished', c.tx.name);
          return who.length > 0 ? who : undefined;
        }, 10_000);
        expect(by, c.tx.name).toHaveLength(1);
        expect(s.live(), c.tx.name).toContain(by[0]);
        expect(s.loggedBy('decision persisted', c.tx.name), c.tx.name).toHaveLength(1);
      }
      history.stop();
      expect(checkHistories(history.history, all.map((c) => c.tx.name))).toEqual([]);
      const check = checkPayments({ before, after: pay.ledgers(), created: all.map((c) => c.tx), objects });
      expect(check.violations).toEqual([]);
    }, 180_000);
  });
}

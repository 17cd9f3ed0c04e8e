/**
 * The fault-injection driver. Scenarios take a KubeConfig and the control
 * plane's restart hooks, run payment transactions (test/support/payment.ts;
 * TCC, and in runPaymentChaos a random mix of TCC and Saga)
 * while injecting faults, wait for quiescence (event-driven: polling the
 * objects), and return figures plus invariant violations (invariants.ts).
 *
 * Timers only decide WHEN a fault is injected; every wait for an outcome polls.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { dbPathIn, SERVICES, type ServiceName } from '../../examples/payment/db.js';
import { clearFaults, FAULT_METHODS, setFault, type FaultMethod } from '../../examples/payment/faults.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { eventually } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, terminal, transactions } from '../support/payment.js';
import { HistoryRecorder } from './history.js';
import { checkHistories, checkPayments, type ModeCounts, type PaymentTx } from './invariants.js';
import { allBadParticipants } from './misbehaving.js';

export interface ControlPlaneHooks {
  restartApiServer?: () => Promise<void>;
  restartEtcd?: () => Promise<void>;
}

export interface ChaosContext {
  kc: k8s.KubeConfig;
  kubeconfigPath: string;
  hooks?: ControlPlaneHooks;
  log?: (msg: string) => void;
}

export interface ScenarioResult {
  scenario: string;
  transactions: number;
  /** TCC Committed + Saga Completed. */
  committed: number;
  /** TCC Aborted + Saga Compensated. */
  aborted: number;
  /** The same per mode (committed = Completed, aborted = Compensated for Saga). */
  byMode?: Record<'TCC' | 'Saga', ModeCounts>;
  faults: Record<string, number>;
  seconds: number;
  violations: string[];
  notes: string[];
}

const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function namespace(kc: k8s.KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await retrying(() => kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'kubetx.io/test': 'true' } } } }));
  return name;
}

/** Retries an API call across API server / etcd restarts. */
async function retrying<T>(fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(250);
    }
  }
}

/** Active-active replicas with `--shards` (src/controller/sharding/). */
export interface ShardingOptions {
  /** @default 16 */
  shards?: number;
  /** --shard-filter. @default "auto" */
  filter?: 'auto' | 'server' | 'client';
}

/** The shard Leases' prefix (the operator's default, --shard-lease-prefix). */
const SHARD_PREFIX = 'kubetx-shard';

/** One SIGKILLed replica's shards, and how long until other replicas held all of them. */
export interface Handover {
  victim: string;
  shards: number;
  /** Kill → every shard the victim held has another holder in its Lease; undefined if not within 60 s. */
  ms?: number;
}

/** One or more operator processes on one namespace that can be SIGKILLed and restarted. */
export class Operators {
  readonly procs: Array<{ id: string; op: OperatorProcess }> = [];
  kills = 0;
  /** Sharding only: one entry per kill, filled in by a poll of the shard Leases. */
  readonly handovers: Array<Promise<Handover>> = [];
  private readonly leaseName = `kubetx-chaos-${randomBytes(2).toString('hex')}`;
  constructor(
    private readonly ctx: ChaosContext,
    private readonly ns: string,
    private readonly replicas: number,
    private readonly leaderElect: boolean,
    private readonly sharding?: ShardingOptions,
  ) {}

  private async startOne(id: string): Promise<OperatorProcess> {
    // Short timings (as for leader election): a killed replica's shards move within about 4 s.
    const timings = ['--lease-duration', '4s', '--renew-deadline', '3s'];
    const args = this.sharding
      ? ['--shards', String(this.sharding.shards ?? 16), '--shard-filter', this.sharding.filter ?? 'auto', '--leader-election-namespace', this.ns,
        ...timings, '--retry-period', '500ms']
      : this.leaderElect
        ? ['--leader-elect', '--leader-election-namespace', this.ns, '--leader-election-id', this.leaseName, ...timings, '--retry-period', '1s']
        : [];
    return retrying(() => startOperator({ kubeconfig: this.ctx.kubeconfigPath, namespaces: [this.ns], args, env: { POD_NAME: id, POD_NAMESPACE: this.ns } }));
  }

  /** shard → holderIdentity of its Lease ('' when released). */
  async shardHolders(): Promise<Map<number, string>> {
    const res = await this.ctx.kc.makeApiClient(k8s.CoordinationV1Api).listNamespacedLease({ namespace: this.ns, labelSelector: `kubetx.io/shard-set=${SHARD_PREFIX}` });
    const holders = new Map<number, string>();
    for (const l of res.items) {
      const m = new RegExp(`^${SHARD_PREFIX}-(\\d+)$`).exec(l.metadata?.name ?? '');
      if (m) holders.set(Number(m[1]), l.spec?.holderIdentity ?? '');
    }
    return holders;
  }

  /** Polls the shard Leases (every 100 ms) from the kill until none of `shards` names the victim or nobody. */
  private async handover(victim: string, shards: number[], killedAt: number): Promise<Handover> {
    while (Date.now() - killedAt < 60_000) {
      try {
        const holders = await this.shardHolders();
        if (shards.every((s) => { const h = holders.get(s); return h && h !== victim; })) return { victim, shards: shards.length, ms: Date.now() - killedAt };
      } catch {
        // the API server is restarting: ask again
      }
      await delay(100);
    }
    return { victim, shards: shards.length };
  }

  async start(): Promise<void> {
    const tag = randomBytes(2).toString('hex');
    const ids = Array.from({ length: this.replicas }, (_, i) => `kubetx-${tag}-${i}`);
    const ops = await Promise.all(ids.map((id) => this.startOne(id)));
    ids.forEach((id, i) => this.procs.push({ id, op: ops[i]! }));
  }

  /** The replica to kill: the Lease holder with leader election, otherwise a random one. */
  private async victim(): Promise<number> {
    if (this.leaderElect) {
      try {
        const lease = await this.ctx.kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: this.leaseName, namespace: this.ns });
        const i = this.procs.findIndex((p) => p.id === lease.spec?.holderIdentity);
        if (i >= 0) return i;
      } catch {
        // no lease yet, or the API server is restarting
      }
    }
    return Math.floor(Math.random() * this.procs.length);
  }

  /** The Lease's leaseTransitions (holder changes), when leader election is on and the Lease is readable. */
  async leaseTransitions(): Promise<number | undefined> {
    if (!this.leaderElect) return undefined;
    try {
      const lease = await this.ctx.kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: this.leaseName, namespace: this.ns });
      return lease.spec?.leaseTransitions;
    } catch {
      return undefined;
    }
  }

  /**
   * SIGKILL (no cleanup at all), then start a replacement under a new identity,
   * as a Deployment replaces a lost pod. (Restarted under its old identity, a
   * killed leader finds itself the holder and takes the Lease straight back, so
   * repeated kills would never make the standby take over.)
   */
  async killAndRestart(): Promise<void> {
    const i = await this.victim();
    const p = this.procs[i]!;
    const held = this.sharding ? await this.shardHolders().then((h) => [...h].filter(([, id]) => id === p.id).map(([s]) => s), () => undefined) : undefined;
    await p.op.kill('SIGKILL');
    if (held) this.handovers.push(this.handover(p.id, held, Date.now()));
    this.kills++;
    const replacement = `${p.id.replace(/-r\d+$/, '')}-r${this.kills}`;
    this.ctx.log?.(`SIGKILL operator ${p.id} (kill #${this.kills}); replacement ${replacement}`);
    p.op = await this.startOne(replacement);
    p.id = replacement;
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.op.kill('SIGKILL')));
  }
}

export interface PaymentChaosOptions {
  transactions: number;
  /** Share of Saga transactions (each one drawn at random); the rest are TCC. @default 0.5 */
  sagaShare?: number;
  /** Operator SIGKILLs (the leader's, with leaderElect). */
  operatorKills: number;
  apiServerRestarts?: number;
  etcdRestarts?: number;
  /** Payment service stop + restart. */
  participantRestarts?: number;
  /** Probability per 200 ms tick of arming a random fault (fail; hang when `hangs`). */
  faultRate?: number;
  hangs?: boolean;
  /** Two replicas with leader election. */
  leaderElect?: boolean;
  /** Active-active replicas with --shards (3 by default) instead; a random one is killed each time. */
  sharding?: ShardingOptions & { replicas?: number; expectFilter?: 'server' | 'client' };
  /** Mean gap between transaction creations. */
  createEveryMs?: number;
  quiesceTimeoutMs?: number;
}

/** Payment transactions, TCC and Saga mixed, under operator kills, participant errors/hangs/restarts and control-plane restarts. */
export async function runPaymentChaos(ctx: ChaosContext, o: PaymentChaosOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const log = ctx.log ?? (() => undefined);
  const ns = await namespace(ctx.kc, 'chaos');
  const txs = transactions(ctx.kc);
  const pay = await startPayment();
  // Enough stock for every transaction (qty 2); conservation is checked against this.
  pay.services.inventory.db.prepare(`UPDATE items SET stock = stock + ?`).run(2 * o.transactions);
  const recorder = new HistoryRecorder(ctx.kc, ns);
  await recorder.start();
  const ops = new Operators(ctx, ns, o.sharding ? (o.sharding.replicas ?? 3) : o.leaderElect ? 2 : 1, o.leaderElect ?? false, o.sharding);
  const faults: Record<string, number> = { operatorKill: 0, apiServerRestart: 0, etcdRestart: 0, participantRestart: 0, participantFault: 0, hang: 0 };
  const created: PaymentTx[] = [];
  try {
    await ops.start();
    const shardNotes = o.sharding ? await shardingStart(ops, o.sharding.expectFilter) : undefined;
    const before = pay.ledgers();

    // Random participant errors: a timer arms `fail` (and `hang`, `refuse` on Try/Execute) faults with a remaining count,
    // on any of the five methods. `fail@after` on Try/Execute is safe: the fault switches never refuse a call that took effect.
    let flapping = true;
    const flapper = (async () => {
      while (flapping) {
        if (Math.random() < (o.faultRate ?? 0.3)) {
          const svc = pick(SERVICES);
          const method = pick<FaultMethod>(FAULT_METHODS);
          const r = Math.random();
          try {
            if (o.hangs && r < 0.15) {
              setFault(dbPathIn(pay.dir, svc), { method, mode: 'hang', remaining: 1 });
              faults.hang!++;
            } else if ((method === 'Try' || method === 'Execute') && r < 0.35) {
              setFault(dbPathIn(pay.dir, svc), { method, mode: 'refuse', remaining: 1 });
              faults.participantFault!++;
            } else {
              setFault(dbPathIn(pay.dir, svc), { method, mode: 'fail', remaining: 1 + Math.floor(Math.random() * 3), after: Math.random() < 0.3 });
              faults.participantFault!++;
            }
          } catch (err) {
            log(`could not arm a fault: ${String(err)}`);
          }
        }
        await delay(200);
      }
    })();

    // The planned disruptive faults, in random order, at random moments while transactions are created.
    const actions: Array<() => Promise<void>> = [];
    // When each disruptive fault happened, to say what the slowest transactions lived through.
    const timeline: Array<{ from: number; to: number; what: string }> = [];
    const timed = async (what: string | (() => string), f: () => Promise<void>) => {
      const from = Date.now();
      await f();
      timeline.push({ from, to: Date.now(), what: typeof what === 'string' ? what : what() });
    };
    // A kill's span ends when its replacement is up.
    for (let i = 0; i < o.operatorKills; i++) actions.push(() => timed(() => `SIGKILL #${ops.kills}`, async () => { await ops.killAndRestart(); faults.operatorKill!++; }));
    for (let i = 0; i < (o.apiServerRestarts ?? 0) && ctx.hooks?.restartApiServer; i++) {
      actions.push(() => timed('kube-apiserver restart', async () => { log('restarting kube-apiserver'); await ctx.hooks!.restartApiServer!(); faults.apiServerRestart!++; }));
    }
    for (let i = 0; i < (o.etcdRestarts ?? 0) && ctx.hooks?.restartEtcd; i++) {
      actions.push(() => timed('etcd restart', async () => { log('restarting etcd'); await ctx.hooks!.restartEtcd!(); faults.etcdRestart!++; }));
    }
    for (let i = 0; i < (o.participantRestarts ?? 0); i++) {
      actions.push(async () => {
        const svc: ServiceName = pick(SERVICES);
        log(`stopping payment service ${svc}`);
        await timed(`${svc} service down`, async () => {
          await pay.stop(svc);
          await delay(rand(500, 3000));
          await pay.restart(svc);
        });
        faults.participantRestart!++;
      });
    }
    actions.sort(() => Math.random() - 0.5);
    const every = o.createEveryMs ?? 250;
    const spanMs = o.transactions * every;
    const injector = (async () => {
      for (const a of actions) {
        await delay(rand(0.3, 1.7) * (spanMs / Math.max(1, actions.length)));
        await a();
      }
    })();

    // Orders are added up front: the order service may be stopped (its database closed) mid-run.
    const orderIds = Array.from({ length: o.transactions }, (_, i) => 100_000 + i);
    pay.addOrders(orderIds);
    const creator = (async () => {
      for (let i = 0; i < o.transactions; i++) {
        const orderId = orderIds[i]!;
        const mode = Math.random() < (o.sagaShare ?? 0.5) ? 'Saga' : 'TCC';
        const name = `${mode === 'Saga' ? 'saga' : 'pay'}-${orderId}`;
        const tx = payOrder(pay, { name, namespace: ns, orderId, timeout: '20s', callTimeout: '2s', mode });
        await retrying(async () => {
          try {
            await txs.create(tx);
          } catch (err) {
            if ((err as { code?: number }).code !== 409) throw err; // created by an earlier attempt
          }
        });
        created.push({ name, orderId, qty: 2, credit: 10, mode });
        await delay(rand(0, 2 * every));
      }
    })();
    await Promise.all([creator, injector]);
    flapping = false;
    await flapper;
    for (const s of SERVICES) clearFaults(dbPathIn(pay.dir, s));
    log(`all ${created.length} transactions created, ${JSON.stringify(faults)}; waiting for quiescence`);

    const lastCreated = Date.now();
    const objects = await quiesce(txs, ns, created.map((c) => c.name), o.quiesceTimeoutMs ?? 180_000).catch(async () => retrying(() => txs.list(ns)));
    const quiescedAfterS = (Date.now() - lastCreated) / 1000;
    // Ledgers settle with the last status write: the outcome is written after the last Confirm/Cancel/Compensate answered.
    const sum = checkPayments({ before, after: pay.ledgers(), created, objects });
    const hist = checkHistories(recorder.history, created.map((c) => c.name));
    const shardEnd = o.sharding ? await shardingEnd(ops) : undefined;
    return {
      scenario: `tcc+saga${o.sharding ? `-sharded-${ops.procs.length}x${o.sharding.shards ?? 16}` : o.leaderElect ? '-leader-election' : ''}`,
      transactions: created.length,
      committed: sum.committed,
      aborted: sum.aborted,
      byMode: sum.byMode,
      faults,
      seconds: (Date.now() - started) / 1000,
      violations: [...sum.violations, ...hist, ...(shardNotes?.violations ?? [])],
      notes: [
        ...(shardNotes?.notes ?? []),
        ...(shardEnd ?? []),
        `time to terminal per transaction (creation → completionTime): ${settleTimes(objects, created.map((c) => c.name))}`,
        `slowest, with the disruptive faults during their lifetime (seconds since the scenario started): ${slowest(objects, created.map((c) => c.name), timeline, started)}`,
        `quiescence ${quiescedAfterS.toFixed(1)} s after the last creation`,
        `watch reconnects: ${recorder.reconnects}`,
        `why aborted: ${abortReasons(created, objects)}`,
        ...(o.leaderElect ? [`Lease holder changes (leaseTransitions): ${(await ops.leaseTransitions()) ?? 'unknown'}`] : []),
      ],
    };
  } finally {
    recorder.stop();
    await ops.stop();
    await pay.stopAll();
  }
}

/** Sharding: the filter every replica chose (a violation when it is not `expect`) and the first split of the shards. */
async function shardingStart(ops: Operators, expect?: 'server' | 'client'): Promise<{ notes: string[]; violations: string[] }> {
  const violations: string[] = [];
  const modes: string[] = [];
  for (const p of ops.procs) {
    const m = await p.op.metrics();
    const mode = counterValue(m, 'kubetx_shard_filter', { mode: 'server' }) === 1 ? 'server' : counterValue(m, 'kubetx_shard_filter', { mode: 'client' }) === 1 ? 'client' : 'none';
    modes.push(mode);
    if (expect && mode !== expect) violations.push(`replica ${p.id}: shard filter ${mode}, expected ${expect}`);
  }
  // The replicas start together and settle in a few rounds; wait (bounded) for the fair split before the load starts.
  const split = await eventually('every shard held by a replica', async () => {
    const holders = await ops.shardHolders();
    const per = ops.procs.map((p) => [...holders.values()].filter((h) => h === p.id).length);
    return per.reduce((a, b) => a + b, 0) === (holders.size || -1) && Math.max(...per) - Math.min(...per) <= 1 ? per : undefined;
  }, 30_000).catch(() => undefined);
  return { notes: [`shard filter per replica: ${modes.join(', ')}; shards per replica at the start: ${split?.join('/') ?? 'not settled within 30 s'}`], violations };
}

/** Sharding: handover times of the kills, and what the replicas alive at the end counted. */
async function shardingEnd(ops: Operators): Promise<string[]> {
  const handovers = await Promise.all(ops.handovers);
  const timed = handovers.filter((h) => h.shards > 0 && h.ms !== undefined).map((h) => h.ms!).sort((a, b) => a - b);
  const untimed = handovers.filter((h) => h.shards > 0 && h.ms === undefined).length;
  const empty = handovers.filter((h) => h.shards === 0).length;
  const q = (p: number) => timed[Math.min(timed.length - 1, Math.ceil(p * timed.length) - 1)]!;
  const ho = timed.length
    ? `p50 ${(q(0.5) / 1000).toFixed(1)} s, max ${(timed.at(-1)! / 1000).toFixed(1)} s over ${timed.length} kills ` +
      `(per kill, seconds/shards: ${handovers.filter((h) => h.shards > 0).map((h) => `${h.ms === undefined ? '>60' : (h.ms / 1000).toFixed(1)}/${h.shards}`).join(', ')})`
    : 'none timed';
  let owned = 0;
  let notOwned = 0;
  let lost = 0;
  const now: number[] = [];
  for (const p of ops.procs) {
    const m = await p.op.metrics().catch(() => '');
    owned += counterValue(m, 'kubetx_watch_events_total', { owned: 'true' });
    notOwned += counterValue(m, 'kubetx_watch_events_total', { owned: 'false' });
    lost += counterValue(m, 'kubetx_shard_transitions_total', { change: 'lost' });
    now.push(counterValue(m, 'kubetx_shards_owned'));
  }
  return [
    `shard handover (SIGKILL → every shard of the victim held by another replica, from its Lease): ${ho}` +
      `${untimed ? `; ${untimed} not handed over within 60 s` : ''}${empty ? `; ${empty} victim(s) held no shard yet` : ''}`,
    `replicas alive at the end (counters since their start): shards owned ${now.join('/')}, watch events owned ${owned} / not owned ${notOwned}, shards lost ${lost}`,
  ];
}

/**
 * p50/p99/max of creationTimestamp → completionTime over the named objects
 * that finished. creationTimestamp has second precision, so each figure may be
 * up to 1 s long.
 */
export function settleTimes(objects: DistributedTransaction[], names: string[]): string {
  const wanted = new Set(names);
  const secs = objects
    .filter((t) => wanted.has(t.metadata.name) && t.status?.completionTime && t.metadata.creationTimestamp)
    .map((t) => (Date.parse(t.status!.completionTime!) - Date.parse(String(t.metadata.creationTimestamp))) / 1000)
    .sort((a, b) => a - b);
  if (secs.length === 0) return 'none finished';
  const q = (p: number) => secs[Math.min(secs.length - 1, Math.ceil(p * secs.length) - 1)]!;
  return `p50 ${q(0.5).toFixed(1)} s, p99 ${q(0.99).toFixed(1)} s, max ${secs[secs.length - 1]!.toFixed(1)} s (${secs.length} finished)`;
}

/** The 3 slowest of the named transactions (creation → completionTime) and the timed faults that overlapped them. */
function slowest(objects: DistributedTransaction[], names: string[], timeline: Array<{ from: number; to: number; what: string }>, started: number): string {
  const wanted = new Set(names);
  const rel = (ms: number) => ((ms - started) / 1000).toFixed(0);
  const rows = objects
    .filter((t) => wanted.has(t.metadata.name) && t.status?.completionTime && t.metadata.creationTimestamp)
    .map((t) => ({ t, from: Date.parse(String(t.metadata.creationTimestamp)), to: Date.parse(t.status!.completionTime!) }))
    .sort((a, b) => b.to - b.from - (a.to - a.from))
    .slice(0, 3);
  if (rows.length === 0) return 'none finished';
  return rows
    .map(({ t, from, to }) => {
      // creationTimestamp has second precision: widen the window by a second.
      const during = timeline.filter((f) => f.to >= from - 1000 && f.from <= to).map((f) => `${f.what} ${rel(f.from)}–${rel(f.to)}`);
      return `${t.metadata.name} ${((to - from) / 1000).toFixed(1)} s (${t.spec.mode} ${t.status?.phase}, ${rel(from)}–${rel(to)}: ${during.length ? during.join(', ') : 'no timed fault'})`;
    })
    .join('; ');
}

/** Why the aborted (Aborted/Compensated) transactions were rolled back, counted per mode, from their status messages. */
function abortReasons(created: PaymentTx[], objects: DistributedTransaction[]): string {
  const byName = new Map(objects.map((t) => [t.metadata.name, t]));
  const counts: Record<string, number> = {};
  for (const c of created) {
    const st = byName.get(c.name)?.status;
    if (st?.phase !== 'Aborted' && st?.phase !== 'Compensated') continue;
    const why = /refused/.test(st.message ?? '') ? 'refused' : /^timeout/.test(st.message ?? '') ? 'timeout' : 'other';
    const key = `${c.mode ?? 'TCC'} ${why}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return Object.keys(counts).length ? Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ') : 'none';
}

async function quiesce(txs: ReturnType<typeof transactions>, ns: string, names: string[], timeoutMs: number): Promise<DistributedTransaction[]> {
  return eventually(`${names.length} transactions terminal`, async () => {
    const all = await txs.list(ns);
    const byName = new Map(all.map((t) => [t.metadata.name, t]));
    return names.every((n) => terminal.has(byName.get(n)?.status?.phase ?? '')) ? all : undefined;
  }, timeoutMs);
}

/**
 * Two replicas WITHOUT leader election on the same objects: only optimistic
 * concurrency (resourceVersion preconditions) stands between them and a double
 * decision. Confirm/Try failures keep transactions open long enough to race.
 */
export async function runRacingReplicas(ctx: ChaosContext, o: { transactions: number; kills?: number }): Promise<ScenarioResult> {
  const started = Date.now();
  const ns = await namespace(ctx.kc, 'race');
  const txs = transactions(ctx.kc);
  const pay = await startPayment();
  const recorder = new HistoryRecorder(ctx.kc, ns);
  await recorder.start();
  const ops = new Operators(ctx, ns, 2, false);
  const created: PaymentTx[] = [];
  const faults: Record<string, number> = { operatorKill: 0, participantFault: 0 };
  try {
    await ops.start();
    const before = pay.ledgers();
    let nextOrder = 200_000;
    for (let i = 0; i < o.transactions; i++) {
      // Every few transactions a participant fails for a while, so both replicas retry the same objects.
      if (i % 4 === 0) {
        const method = pick<FaultMethod>(['Try', 'Confirm', 'Cancel']);
        setFault(dbPathIn(pay.dir, pick(SERVICES)), { method, mode: method === 'Try' && i % 8 === 0 ? 'refuse' : 'fail', remaining: 1 + (i % 3) });
        faults.participantFault!++;
      }
      const orderId = nextOrder++;
      pay.addOrders([orderId]);
      const name = `race-${orderId}`;
      await txs.create(payOrder(pay, { name, namespace: ns, orderId, timeout: '20s', callTimeout: '2s' }));
      created.push({ name, orderId, qty: 2, credit: 10 });
      if (o.kills && i === Math.floor(o.transactions / 2)) {
        for (let k = 0; k < o.kills; k++) await ops.killAndRestart();
        faults.operatorKill = ops.kills;
      }
    }
    const objects = await quiesce(txs, ns, created.map((c) => c.name), 120_000).catch(() => txs.list(ns));
    for (const s of SERVICES) clearFaults(dbPathIn(pay.dir, s));
    const tcc = checkPayments({ before, after: pay.ledgers(), created, objects });
    // 409s the replicas got on status writes (counters of the processes alive now, i.e. since their last restart).
    let conflicts = 0;
    for (const p of ops.procs) conflicts += counterValue(await p.op.metrics().catch(() => ''), 'kubetx_status_writes_total', { result: 'conflict' });
    return {
      scenario: 'racing-replicas-no-leader-election',
      transactions: created.length,
      committed: tcc.committed,
      aborted: tcc.aborted,
      faults,
      seconds: (Date.now() - started) / 1000,
      violations: [...tcc.violations, ...checkHistories(recorder.history, created.map((c) => c.name))],
      notes: [
        `status-write conflicts (409) seen by the replicas: ${conflicts}`,
        `time to terminal per transaction (creation → completionTime): ${settleTimes(objects, created.map((c) => c.name))}`,
      ],
    };
  } finally {
    recorder.stop();
    await ops.stop();
    await pay.stopAll();
  }
}

/**
 * Misbehaving participants (garbage bytes, wrong status codes, very slow,
 * connection resets) in some transactions; well-behaved transactions created
 * at the same time must commit normally and fast.
 */
export async function runIsolation(ctx: ChaosContext, o: { good: number; badPerKind: number; fastMs?: number; spreadMs?: number }): Promise<ScenarioResult> {
  const started = Date.now();
  const ns = await namespace(ctx.kc, 'isolation');
  const txs = transactions(ctx.kc);
  const pay = await startPayment();
  const bad = await allBadParticipants();
  const ops = new Operators(ctx, ns, 1, false);
  const fastMs = o.fastMs ?? 15_000;
  const violations: string[] = [];
  const notes: string[] = [];
  try {
    await ops.start();
    const before = pay.ledgers();
    let nextOrder = 300_000;
    // The bad transactions first, so they occupy the operator when the good ones arrive.
    const badNames: Array<{ name: string; kind: string }> = [];
    for (const b of bad) {
      for (let i = 0; i < o.badPerKind; i++) {
        const orderId = nextOrder++;
        pay.addOrders([orderId]);
        const tx = payOrder(pay, { name: `bad-${b.kind}-${orderId}`, namespace: ns, orderId, timeout: '8s', callTimeout: '2s' });
        tx.spec.branches[3]!.endpoint = { address: b.address };
        await txs.create(tx);
        badNames.push({ name: tx.metadata.name, kind: b.kind });
      }
    }
    const good: PaymentTx[] = [];
    const createdAt = new Map<string, number>();
    // Completion times are taken by a poll that runs while the good transactions are being created.
    const finishedAt = new Map<string, number>();
    let latest: DistributedTransaction[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          latest = await txs.list(ns);
          for (const t of latest) if (terminal.has(t.status?.phase ?? '') && !finishedAt.has(t.metadata.name)) finishedAt.set(t.metadata.name, Date.now());
        } catch {
          // transient; the next poll catches up
        }
        await delay(100);
      }
    })();
    // Spread over the bad transactions' Try timeout (8s) and their Cancel phase.
    for (let i = 0; i < o.good; i++) {
      if (i > 0) await delay(o.spreadMs ?? 0);
      const orderId = nextOrder++;
      pay.addOrders([orderId]);
      const name = `good-${orderId}`;
      createdAt.set(name, Date.now());
      await txs.create(payOrder(pay, { name, namespace: ns, orderId, timeout: '20s', callTimeout: '2s' }));
      good.push({ name, orderId, qty: 2, credit: 10 });
    }
    const objects = await eventually('good transactions terminal', async () => (good.every((g) => finishedAt.has(g.name)) ? latest : undefined), 60_000)
      .finally(async () => {
        polling = false;
        await poller;
      });
    let slowest = 0;
    for (const g of good) {
      const ms = finishedAt.get(g.name)! - createdAt.get(g.name)!;
      slowest = Math.max(slowest, ms);
      if (ms > fastMs) violations.push(`${g.name}: took ${ms} ms next to misbehaving participants`);
    }
    const ledgers = pay.ledgers();
    // Only the good transactions are terminal; check them alone (the bad ones keep the conservation sums open).
    const tcc = checkPayments({ before, after: ledgers, created: good, objects });
    violations.push(...tcc.violations.filter((v) => !/^(inventory|credit|order):/.test(v)));
    if (tcc.committed !== good.length) violations.push(`only ${tcc.committed}/${good.length} good transactions committed`);
    const byName = new Map(objects.map((t) => [t.metadata.name, t]));
    for (const b of badNames) {
      const t = byName.get(b.name);
      if (t?.status?.phase === 'Committed' || t?.status?.decision === 'Confirm') violations.push(`${b.name}: committed through a ${b.kind} participant`);
    }
    notes.push(`slowest good transaction: ${slowest} ms`);
    notes.push(`bad transactions: ${badNames.map((b) => `${b.kind}=${byName.get(b.name)?.status?.phase}`).join(', ')}`);
    return {
      scenario: 'misbehaving-participant-isolation',
      transactions: good.length + badNames.length,
      committed: tcc.committed,
      aborted: 0,
      faults: Object.fromEntries(bad.map((b) => [b.kind, o.badPerKind])),
      seconds: (Date.now() - started) / 1000,
      violations,
      notes,
    };
  } finally {
    await ops.stop();
    await Promise.all(bad.map((b) => b.stop()));
    await pay.stopAll();
  }
}

export function formatResult(r: ScenarioResult): string {
  const modes = r.byMode
    ? `: TCC ${r.byMode.TCC.committed} committed/${r.byMode.TCC.aborted} aborted, Saga ${r.byMode.Saga.committed} completed/${r.byMode.Saga.aborted} compensated`
    : '';
  return [
    `== ${r.scenario}: ${r.transactions} transactions (${r.committed} committed, ${r.aborted} aborted${modes}) in ${r.seconds.toFixed(1)} s`,
    `   faults: ${JSON.stringify(r.faults)}`,
    ...r.notes.map((n) => `   ${n}`),
    r.violations.length ? `   VIOLATIONS (${r.violations.length}):\n${r.violations.map((v) => `     - ${v}`).join('\n')}` : '   invariants: all hold',
  ].join('\n');
}

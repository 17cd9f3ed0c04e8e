/**
 * Wires the operator together: informer → work queue → bounded workers →
 * reconciler, plus the HTTP endpoints for probes and metrics.
 *
 * Freshness: right after our own status write the informer may still hold the
 * previous version. Reconciling from it would redo calls (harmless, they are
 * idempotent, but wasteful) and then lose a 409. So the manager remembers, per
 * object, the version it wrote and the one it replaced, and prefers its own
 * copy while the cache still shows the replaced one.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../api/types.js';
import { ResilientInformer } from './informer.js';
import { slimForCache } from './cache-transform.js';
import { listInPages } from './list-pages.js';
import { finalPhases } from './phases.js';
import { STALLED } from '../engine/stalled.js';
import { CONTROLLER_NAME, type OperatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { controllerRateLimiter, QUEUE_DEFAULTS } from './rate-limiter.js';
import type { Reconciler } from './reconciler.js';
import type { CallTracker } from './call-tracker.js';
import type { StatusStore } from './status-writer.js';
import { shardOfUid, shardSelector } from './sharding/hash-range.js';
import { withShardSelector } from './sharding/shard-query.js';

export interface ManagerOptions {
  kubeConfig: k8s.KubeConfig;
  reconciler: Reconciler;
  /** The reconciler's call tracker: a batch of calls that ends queues its key again. */
  calls: CallTracker;
  store: StatusStore;
  metrics: OperatorMetrics;
  logger: Logger;
  /** Concurrent reconciles (API reads and writes only: participant calls run apart, in the CallTracker). @default 16 */
  workers: number;
  /** Watch these namespaces only; empty = all namespaces. */
  namespaces: string[];
  resyncMs?: number;
  /** --queue-qps: the token bucket over rate-limited requeues (failed reconciles, lost write races); 0 = none. @default QUEUE_DEFAULTS.qps (50) */
  queueQps?: number;
  /** --queue-burst: that bucket's size. @default QUEUE_DEFAULTS.burst (100) */
  queueBurst?: number;
  /** --shards: reconcile only the shards this replica owns (docs/scaling.md); absent = everything. */
  sharding?: ManagerSharding;
}

export interface ManagerSharding {
  shards: number;
  /** server: one watch per owned shard with a shardSelector; client: one watch of everything, filtered here. */
  filter: 'server' | 'client';
  /** Whether this replica may act on the shard now (ShardLeases.owns). */
  owns: (shard: number) => boolean;
}

interface Written {
  /** Every resourceVersion our writes superseded since the cache last caught up (a reconcile may write twice). */
  replaced: Set<string>;
  /** Our latest write; undefined after a conflict (read live). */
  tx: DistributedTransaction | undefined;
}

const keyOf = (ns: string, name: string) => `${ns}/${name}`;
const keyOfObject = (o: { metadata?: { namespace?: string; name?: string } }) => keyOf(o.metadata?.namespace ?? '', o.metadata?.name ?? '');
/** Objects per list request: at most one page of full objects is alive at once while the cache fills. */
const LIST_PAGE = 20;

/**
 * How long a shard being given up waits for its reconciles under way (API
 * requests only: participant calls are cancelled) before its Lease is released
 * anyway; short, so the shard round still ends within the renew deadline.
 */
const HANDOVER_WAIT_MS = 1_000;

type Informer = ResilientInformer<k8s.KubernetesObject>;

export class Manager {
  readonly queue: WorkQueue;
  /** Without sharding, or with the client filter: one informer per namespace scope, over everything. */
  private readonly informers: Informer[] = [];
  /** With the server filter: each owned shard's informers (one per namespace scope). */
  private readonly shardInformers = new Map<number, Informer[]>();
  /** key → the shard of its object's uid (sharding only), for handing a shard's keys over. */
  private readonly keyShard = new Map<string, number>();
  private readonly reconcileDone = new Set<() => void>();
  private readonly api: k8s.CustomObjectsApi;
  private readonly written = new Map<string, Written>();
  private workers: Promise<void>[] = [];
  private running = false;
  /** key → when its reconcile under way began (for the liveness check). */
  private readonly reconciling = new Map<string, number>();
  /** key → the shard of the reconcile under way (sharding only). */
  private readonly reconcilingShards = new Map<string, number>();

  constructor(private readonly opts: ManagerOptions) {
    this.queue = new WorkQueue({ metrics: opts.metrics.queueMetrics(), rateLimiter: controllerRateLimiter({ qps: opts.queueQps ?? QUEUE_DEFAULTS.qps, burst: opts.queueBurst ?? QUEUE_DEFAULTS.burst }) });
    opts.metrics.queueSource = () => {
      const { totalSeconds, longestSeconds } = this.queue.unfinishedWork();
      return { depth: this.queue.depth, waiting: this.queue.length, active: this.queue.inFlight, unfinishedSeconds: totalSeconds, longestSeconds };
    };
    opts.metrics.crMaxConcurrentReconciles.set({ controller: CONTROLLER_NAME }, opts.workers);
    opts.calls.onSettled = (key) => this.queue.add(key);
    this.api = opts.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    opts.metrics.watchEvents.inc({ owned: 'true' }, 0);
    opts.metrics.watchEvents.inc({ owned: 'false' }, 0);
    if (opts.sharding?.filter !== 'server') this.informers.push(...this.makeInformers(undefined));
  }

  /**
   * One informer per namespace scope. With `shard`, the list and the watch
   * carry that shard's shardSelector, so the API server sends only its objects;
   * what it sends outside the shard anyway is counted (owned="false") and ignored.
   */
  private makeInformers(shard: number | undefined): Informer[] {
    const { opts, api } = this;
    const sharding = opts.sharding;
    const selector = shard !== undefined && sharding ? shardSelector([shard], sharding.shards) : undefined;
    const withSelector = selector ? withShardSelector(selector) : undefined;
    const scopes = opts.namespaces.length > 0 ? opts.namespaces : [undefined];
    return scopes.map((ns) => {
      const base = ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
      const path = selector ? `${base}?shardSelector=${encodeURIComponent(selector)}` : base;
      const page = (cont: string | undefined) =>
        (ns
          ? api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, limit: LIST_PAGE, _continue: cont }, withSelector)
          : api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: LIST_PAGE, _continue: cont }, withSelector)) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
      const list = () => listInPages(page, slimForCache);
      const mine = (o: k8s.KubernetesObject) => this.note(o, shard);
      const enqueue = (o: k8s.KubernetesObject) => {
        if (mine(o)) this.queue.add(keyOfObject(o));
      };
      return new ResilientInformer<k8s.KubernetesObject>({
        kubeConfig: opts.kubeConfig,
        path,
        list,
        onUpsert: enqueue,
        transform: slimForCache,
        onResync: (o) => {
          if (this.owned(o)) this.queue.add(keyOfObject(o));
        },
        onDelete: (o) => {
          if (mine(o)) this.gone(keyOfObject(o));
        },
        logger: opts.logger,
        resyncMs: opts.resyncMs,
      });
    });
  }

  /** Counts a watched object and says whether this replica acts on it; `expected` is the shard its watch asked for. */
  private note(o: k8s.KubernetesObject, expected: number | undefined): boolean {
    const sharding = this.opts.sharding;
    if (!sharding) {
      this.opts.metrics.watchEvents.inc({ owned: 'true' });
      return true;
    }
    const shard = this.shardOf(o);
    this.keyShard.set(keyOfObject(o), shard);
    const ours = (expected === undefined || expected === shard) && sharding.owns(shard);
    this.opts.metrics.watchEvents.inc({ owned: String(ours) });
    return ours;
  }

  private owned(o: { metadata?: { uid?: string } }): boolean {
    return !this.opts.sharding || this.opts.sharding.owns(this.shardOf(o));
  }

  /** The shard of an object's uid (sharding only). */
  private shardOf(o: { metadata?: { uid?: string } }): number {
    return shardOfUid(o.metadata?.uid ?? '', this.opts.sharding!.shards);
  }

  private *allInformers(): Iterable<Informer> {
    yield* this.informers;
    for (const list of this.shardInformers.values()) yield* list;
  }

  /**
   * A shard became ours. Server filter: start its watch (the list queues
   * every object in it). Client filter: queue what the cache already holds.
   */
  async addShard(shard: number): Promise<void> {
    if (!this.opts.sharding) return;
    if (this.opts.sharding.filter === 'client') {
      // Before start() the first list queues everything anyway; after it, every cached object's shard was noted on arrival.
      if (this.running) for (const [key, s] of this.keyShard) if (s === shard) this.queue.add(key);
      return;
    }
    const existing = this.shardInformers.get(shard);
    if (existing) {
      // Held all along but fenced for a while (renewed late): what arrived meanwhile was dropped.
      if (this.running) for (const inf of existing) for (const o of inf.list()) this.queue.add(keyOfObject(o));
      return;
    }
    const informers = this.makeInformers(shard);
    this.shardInformers.set(shard, informers);
    // Before start(), start() starts it with the rest.
    if (this.running) await Promise.all(informers.map((i) => i.start()));
  }

  /**
   * A shard is being given up or was lost: drop its keys' timers and backoff,
   * cancel their participant calls (the new owner repeats them: every call is
   * idempotent), stop its watch, and wait (bounded) for its reconciles under
   * way, whose writes are fenced by resourceVersion anyway.
   */
  async removeShard(shard: number): Promise<void> {
    if (!this.opts.sharding) return;
    // The client filter's cache keeps the shard's objects: their noted shard stays for when it comes back.
    const server = this.opts.sharding.filter === 'server';
    for (const [key, s] of this.keyShard) {
      if (s !== shard) continue;
      if (server) this.keyShard.delete(key);
      this.queue.drop(key);
      this.opts.reconciler.forget(key);
      this.written.delete(key);
    }
    const informers = this.shardInformers.get(shard);
    this.shardInformers.delete(shard);
    await Promise.all((informers ?? []).map((i) => i.stop()));
    const busy = () => [...this.reconcilingShards.values()].includes(shard);
    const deadline = Date.now() + HANDOVER_WAIT_MS;
    while (busy() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, deadline - Date.now());
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.reconcileDone.add(done);
      });
    }
  }

  /** Starts watching and reconciling; resolves once the caches are synced. */
  async start(): Promise<void> {
    this.running = true;
    await Promise.all([...this.allInformers()].map((i) => i.start()));
    await Promise.all([...this.allInformers()].map((i) => i.waitForSync()));
    this.workers = Array.from({ length: this.opts.workers }, () => this.work());
    this.opts.logger.info({ workers: this.opts.workers, namespaces: this.opts.namespaces.length ? this.opts.namespaces : 'all' }, 'controller started');
  }

  /**
   * Stops taking work, cancels every participant call in flight (their
   * transactions resume from the persisted status wherever they run next) and
   * waits for the reconciles under way, which do API requests only.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.queue.shutDown();
    this.opts.calls.cancelAll();
    await Promise.all([...this.allInformers()].map((i) => i.stop()));
    await Promise.all(this.workers);
  }

  /**
   * Whether the controller is making progress: false when keys are waiting
   * and every worker has been inside one reconcile for longer than `stallMs`
   * (stuck on an API request that never returns). /healthz reports it, so the
   * kubelet restarts a stalled operator instead of leaving every tenant waiting.
   */
  progressing(stallMs: number, now = Date.now()): boolean {
    if (!this.running || this.queue.length === 0 || this.reconciling.size < this.opts.workers) return true;
    let newest = 0;
    for (const t of this.reconciling.values()) newest = Math.max(newest, t);
    return now - newest <= stallMs;
  }

  /** The object is gone: cancel its calls, drop its timers and our copy of it. */
  private gone(key: string): void {
    this.written.delete(key);
    this.keyShard.delete(key);
    this.opts.reconciler.forget(key);
    this.queue.drop(key);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /**
   * One reconcile and what the queue does next, as controller-runtime's
   * reconcileHandler: an error is requeued rate-limited (result "error"); a
   * lost write race too, being a Requeue (result "requeue"; kubetx_reconcile_total
   * says "conflict"); a timed requeue forgets the backoff and waits (result
   * "requeue_after"); anything else forgets it (result "success", an object
   * found gone included).
   */
  private async process(key: string): Promise<void> {
    const { metrics, logger } = this.opts;
    const [namespace, name] = key.split('/') as [string, string];
    const controller = CONTROLLER_NAME;
    const started = performance.now();
    this.reconciling.set(key, Date.now());
    let result: 'success' | 'requeue' | 'requeue_after' | 'error' = 'success';
    try {
      const tx = await this.freshest(namespace, name);
      if (!tx) {
        this.gone(key);
        return;
      }
      const sharding = this.opts.sharding;
      if (sharding) {
        const shard = this.shardOf(tx);
        // Queued before its shard moved, or the Lease went unrenewed: another replica's now.
        if (!sharding.owns(shard)) return;
        this.reconcilingShards.set(key, shard);
      }
      const r = await this.opts.reconciler.reconcile(tx);
      if (r.kind === 'conflict') {
        result = 'requeue';
        metrics.reconcileTotal.inc({ result: 'conflict' });
        // Our copy is now known stale: read live next time.
        this.written.set(key, { replaced: new Set(), tx: undefined });
        this.queue.addRateLimited(key);
        return;
      }
      metrics.reconcileTotal.inc({ result: 'success' });
      this.queue.forget(key);
      if (r.requeueAfterMs !== undefined && this.running) {
        result = 'requeue_after';
        this.queue.addAfter(key, r.requeueAfterMs);
      }
    } catch (err) {
      result = 'error';
      metrics.reconcileTotal.inc({ result: 'error' });
      metrics.crReconcileErrors.inc({ controller });
      logger.error({ namespace, transaction: name, err: (err as Error).message }, 'reconcile failed, will retry');
      metrics.queueRetries.inc();
      this.queue.addRateLimited(key);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      metrics.reconcileSeconds.observe(seconds);
      metrics.crReconcileTime.observe({ controller }, seconds);
      metrics.crReconcileTotal.inc({ controller, result });
      this.reconciling.delete(key);
      if (this.reconcilingShards.delete(key)) {
        // Wake every removeShard waiting; each checks again whether its shard is still busy.
        for (const done of this.reconcileDone) done();
        this.reconcileDone.clear();
      }
    }
  }

  /** Counts cached transactions that are not finished, by mode and phase (for kubetx_transactions_in_flight). */
  inFlightCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const o of this.ownedTransactions()) {
      const phase = o.status?.phase ?? 'Pending';
      if (finalPhases.has(phase)) continue;
      const key = `${o.spec?.mode ?? 'unknown'}/${phase}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  /** Counts cached transactions with condition Stalled=True, keyed "mode/reason" (for kubetx_transactions_stalled). */
  stalledCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const o of this.ownedTransactions()) {
      const c = o.status?.conditions?.find((x) => x?.type === STALLED);
      if (c?.status !== 'True') continue;
      const key = `${o.spec?.mode ?? 'unknown'}/${c.reason || 'unknown'}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  /** Every transaction in the informer caches that this replica owns (for --max-forward-transactions' count). */
  *cachedTransactions(): Iterable<DistributedTransaction> {
    yield* this.ownedTransactions();
  }

  /**
   * The cached transactions this replica acts on. Read at scrape time and by
   * admission over the whole cache, so no hash per object: a shard's informer
   * holds only its shard (server filter), and the client filter's cache is
   * judged by the shard noted when each object arrived.
   */
  private *ownedTransactions(): Iterable<DistributedTransaction> {
    const sharding = this.opts.sharding;
    if (sharding?.filter === 'server') {
      for (const [shard, informers] of this.shardInformers) {
        if (!sharding.owns(shard)) continue;
        for (const inf of informers) yield* inf.list() as readonly DistributedTransaction[];
      }
      return;
    }
    for (const inf of this.informers) {
      for (const o of inf.list() as readonly DistributedTransaction[]) {
        if (!sharding) yield o;
        else {
          const shard = this.keyShard.get(keyOfObject(o));
          if (shard !== undefined && sharding.owns(shard)) yield o;
        }
      }
    }
  }

  /** Records an object this operator just wrote (called by the status store wrapper). */
  noteWritten(before: DistributedTransaction, after: DistributedTransaction): void {
    const key = keyOf(after.metadata.namespace, after.metadata.name);
    const replaced = this.written.get(key)?.replaced ?? new Set<string>();
    if (before.metadata.resourceVersion) replaced.add(before.metadata.resourceVersion);
    this.written.set(key, { replaced, tx: after });
  }

  private async freshest(namespace: string, name: string): Promise<DistributedTransaction | undefined> {
    const key = keyOf(namespace, name);
    // Custom objects come back as plain JSON: the cache holds DistributedTransactions.
    let cached: DistributedTransaction | undefined;
    for (const i of this.allInformers()) if ((cached = i.get(name, namespace) as DistributedTransaction | undefined)) break;
    const mine = this.written.get(key);
    if (!mine) return cached;
    if (!mine.tx) {
      // After a conflict: the truth is on the server.
      this.written.delete(key);
      return this.opts.store.get(namespace, name);
    }
    if (!cached) {
      // Deleted, or the cache has not caught up with a create: ask the server.
      this.written.delete(key);
      return this.opts.store.get(namespace, name);
    }
    if (mine.replaced.has(cached.metadata.resourceVersion ?? '')) return mine.tx;
    // The cache has our write or something newer.
    this.written.delete(key);
    return cached;
  }
}

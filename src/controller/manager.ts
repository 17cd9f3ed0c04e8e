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
}

interface Written {
  /** Every resourceVersion our writes superseded since the cache last caught up (a reconcile may write twice). */
  replaced: Set<string>;
  /** Our latest write; undefined after a conflict (read live). */
  tx: DistributedTransaction | undefined;
}

const keyOf = (ns: string, name: string) => `${ns}/${name}`;
/** Objects per list request: at most one page of full objects is alive at once while the cache fills. */
const LIST_PAGE = 20;

export class Manager {
  readonly queue: WorkQueue;
  private readonly informers: ResilientInformer<k8s.KubernetesObject>[] = [];
  private readonly written = new Map<string, Written>();
  private workers: Promise<void>[] = [];
  private running = false;
  /** key → when its reconcile under way began (for the liveness check). */
  private readonly reconciling = new Map<string, number>();

  constructor(private readonly opts: ManagerOptions) {
    this.queue = new WorkQueue({ metrics: opts.metrics.queueMetrics(), rateLimiter: controllerRateLimiter({ qps: opts.queueQps ?? QUEUE_DEFAULTS.qps, burst: opts.queueBurst ?? QUEUE_DEFAULTS.burst }) });
    opts.metrics.queueSource = () => {
      const { totalSeconds, longestSeconds } = this.queue.unfinishedWork();
      return { depth: this.queue.depth, waiting: this.queue.length, active: this.queue.inFlight, unfinishedSeconds: totalSeconds, longestSeconds };
    };
    opts.metrics.crMaxConcurrentReconciles.set({ controller: CONTROLLER_NAME }, opts.workers);
    opts.calls.onSettled = (key) => this.queue.add(key);
    const api = opts.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const scopes = opts.namespaces.length > 0 ? opts.namespaces : [undefined];
    for (const ns of scopes) {
      const path = ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
      const page = (cont: string | undefined) =>
        (ns
          ? api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, limit: LIST_PAGE, _continue: cont })
          : api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: LIST_PAGE, _continue: cont })) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
      const list = () => listInPages(page, slimForCache);
      const enqueue = (o: k8s.KubernetesObject) => this.queue.add(keyOf(o.metadata?.namespace ?? '', o.metadata?.name ?? ''));
      this.informers.push(
        new ResilientInformer<k8s.KubernetesObject>({
          kubeConfig: opts.kubeConfig,
          path,
          list,
          onUpsert: enqueue,
          transform: slimForCache,
          onResync: enqueue,
          onDelete: (o) => this.gone(keyOf(o.metadata?.namespace ?? '', o.metadata?.name ?? '')),
          logger: opts.logger,
          resyncMs: opts.resyncMs,
        }),
      );
    }
  }

  /** Starts watching and reconciling; resolves once the caches are synced. */
  async start(): Promise<void> {
    this.running = true;
    await Promise.all(this.informers.map((i) => i.start()));
    await Promise.all(this.informers.map((i) => i.waitForSync()));
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
    await Promise.all(this.informers.map((i) => i.stop()));
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
    }
  }

  /** Counts cached transactions that are not finished, by mode and phase (for kubetx_transactions_in_flight). */
  inFlightCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const inf of this.informers) {
      for (const o of inf.list() as readonly DistributedTransaction[]) {
        const phase = o.status?.phase ?? 'Pending';
        if (finalPhases.has(phase)) continue;
        const key = `${o.spec?.mode ?? 'unknown'}/${phase}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    return counts;
  }

  /** Counts cached transactions with condition Stalled=True, keyed "mode/reason" (for kubetx_transactions_stalled). */
  stalledCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const inf of this.informers) {
      for (const o of inf.list() as readonly DistributedTransaction[]) {
        const c = o.status?.conditions?.find((x) => x?.type === STALLED);
        if (c?.status !== 'True') continue;
        const key = `${o.spec?.mode ?? 'unknown'}/${c.reason || 'unknown'}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    return counts;
  }

  /** Every transaction in the informer caches (for --max-forward-transactions' count). */
  *cachedTransactions(): Iterable<DistributedTransaction> {
    for (const inf of this.informers) yield* inf.list() as readonly DistributedTransaction[];
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
    const cached = this.informers.map((i) => i.get(name, namespace)).find(Boolean) as DistributedTransaction | undefined;
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

/**
 * A list+watch cache that keeps itself alive.
 *
 * client-node's informer stops for good on any error other than 410 (a 429
 * while a CRD's storage initialises, a reset connection, an API server
 * restart), and a watch whose connection dies silently delivers nothing
 * forever. This wrapper restarts it with backoff on every error, restarts it
 * when the watch has been quiet for longer than `watchdogMs` (the server closes
 * idle watches within minutes anyway), and calls `onResync` for every cached
 * object each `resyncMs` so a lost event cannot strand an object.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { setLongInterval, setLongTimeout, type LongTimer } from './timers.js';

export interface ResilientInformerOptions<T extends k8s.KubernetesObject> {
  kubeConfig: k8s.KubeConfig;
  /** e.g. /apis/kubetx.io/v1alpha1/distributedtransactions or .../namespaces/NS/... */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  onUpsert: (obj: T) => void;
  onDelete: (obj: T) => void;
  /** Called for every cached object on each resync. */
  onResync?: (obj: T) => void;
  logger: Logger;
  /** @default 300_000 */
  resyncMs?: number;
  /** @default 600_000 */
  watchdogMs?: number;
  /** Watch only objects with these labels (the list function must apply the same selector). */
  labelSelector?: string;
  /**
   * Applied in place to every object before the cache keeps it (listed or
   * watched): what the operator must not hold in memory is dropped here.
   */
  transform?: (obj: T) => T;
}

export class ResilientInformer<T extends k8s.KubernetesObject> {
  private informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  private stopped = false;
  private restartDelayMs = 100;
  private lastActivity = Date.now();
  private timers: LongTimer[] = [];
  private restarting = false;
  private synced = false;
  private syncWaiters: Array<() => void> = [];

  constructor(private readonly opts: ResilientInformerOptions<T>) {
    // The informer swallows list errors (it emits 'error' and returns), so the
    // cache counts as synced only once a list has really come back; setImmediate
    // runs after the informer has put the listed items into its cache.
    const transform = opts.transform ?? ((o: T) => o);
    const list = async () => {
      const result = await opts.list();
      for (const item of result.items) transform(item);
      setImmediate(() => this.markSynced());
      return result;
    };
    this.informer = k8s.makeInformer(opts.kubeConfig, opts.path, list, opts.labelSelector);
    const touch = () => {
      this.lastActivity = Date.now();
      this.restartDelayMs = 100;
    };
    // The informer's cache holds the very object it hands to these handlers: slimming it here slims the cache.
    this.informer.on('add', (o) => (touch(), opts.onUpsert(transform(o))));
    this.informer.on('update', (o) => (touch(), opts.onUpsert(transform(o))));
    this.informer.on('delete', (o) => (touch(), opts.onDelete(o)));
    this.informer.on('connect', () => touch());
    this.informer.on('error', (err) => this.restartAfterError(err));
  }

  async start(): Promise<void> {
    await this.startOnce();
    const resyncMs = this.opts.resyncMs ?? 300_000;
    const watchdogMs = this.opts.watchdogMs ?? 600_000;
    this.timers.push(
      setLongInterval(() => {
        for (const o of this.informer.list()) this.opts.onResync?.(o);
      }, resyncMs),
      setLongInterval(() => {
        if (Date.now() - this.lastActivity > watchdogMs) {
          this.opts.logger.warn({ path: this.opts.path, quietMs: Date.now() - this.lastActivity }, 'watch quiet for too long, restarting');
          void this.restart();
        }
      }, Math.min(watchdogMs, 30_000)),
    );
  }

  /** Resolves once the first list has been loaded into the cache. */
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  get(name: string, namespace: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) t.clear();
    await this.informer.stop();
  }

  private async startOnce(): Promise<void> {
    try {
      await this.informer.start();
      this.lastActivity = Date.now();
    } catch (err) {
      this.restartAfterError(err);
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private restartAfterError(err: unknown): void {
    if (this.stopped || this.restarting) return;
    this.opts.logger.warn({ path: this.opts.path, err: String(err), retryInMs: this.restartDelayMs }, 'watch failed, restarting');
    this.restarting = true;
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 10_000);
    setLongTimeout(() => {
      this.restarting = false;
      void this.restart();
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.stopped) return;
    await this.informer.stop().catch(() => undefined);
    await this.startOnce();
  }
}

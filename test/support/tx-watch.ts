/**
 * A test's own list+watch of a namespace's DistributedTransactions that
 * survives the API server closing the watch: it re-establishes the watch from
 * the last resourceVersion it saw, and lists afresh when that version is gone
 * (410 Gone). Every listed or watched object goes to `onObject`, so a close
 * may hide intermediate versions but never the latest one.
 *
 * `timeoutSeconds` asks the server to close each watch after that long (as it
 * does by itself after --min-request-timeout); `drop()` aborts the current
 * watch from this side, as a broken connection would. `closes` counts the
 * watches that ended while the recorder was running, `early` those the
 * server ended before `timeoutSeconds` without being dropped (it closes the
 * watch of a client that reads too slowly); `relists` counts the lists after
 * a 410.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';

export interface TxWatchOptions {
  /** Server-side timeout of each watch request. */
  timeoutSeconds?: number;
}

export class TransactionWatch {
  closes = 0;
  early = 0;
  relists = 0;
  /** Watch requests started (the first one included). */
  watches = 0;
  private stopped = false;
  private ctrl: AbortController | undefined;
  private rv: string | undefined;
  private dropping = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly ns: string,
    private readonly onObject: (obj: DistributedTransaction) => void,
    private readonly opts: TxWatchOptions = {},
  ) {}

  /** Lists, then watches from the list's resourceVersion; resolves once the first watch request is made. */
  async start(): Promise<void> {
    await this.list();
    await this.watch();
  }

  stop(): void {
    this.stopped = true;
    this.ctrl?.abort();
  }

  /** Aborts the current watch (it is re-established from the last resourceVersion). */
  drop(): void {
    this.dropping = true;
    this.ctrl?.abort();
  }

  private async list(): Promise<void> {
    const api = this.kc.makeApiClient(k8s.CustomObjectsApi);
    const res = (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: this.ns })) as {
      items: DistributedTransaction[];
      metadata: { resourceVersion: string };
    };
    for (const o of res.items) this.onObject(o);
    this.rv = res.metadata.resourceVersion;
  }

  private async watch(): Promise<void> {
    this.watches++;
    let ended = false;
    const since = Date.now();
    const ctrl = await new k8s.Watch(this.kc).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${this.ns}/${PLURAL}`,
      { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds: this.opts.timeoutSeconds },
      (type, obj: DistributedTransaction & { code?: number }) => {
        if (type === 'ERROR') {
          // 410 Gone (the version was compacted away) or another error: relist when it closes.
          this.rv = undefined;
          return;
        }
        if (obj?.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
        if (type !== 'BOOKMARK') this.onObject(obj);
      },
      (err: { statusCode?: number } | null) => {
        ended = true;
        if (err?.statusCode === 410) this.rv = undefined;
        if (!this.dropping && !this.stopped && (this.opts.timeoutSeconds === undefined || Date.now() - since < this.opts.timeoutSeconds * 1000 - 500)) this.early++;
        this.dropping = false;
        this.reconnect();
      },
    );
    // done may have run before watch() returned (the request failed at once): keep no dead controller.
    if (!ended) this.ctrl = ctrl;
  }

  private reconnect(): void {
    if (this.stopped) return;
    this.closes++;
    this.ctrl = undefined;
    const again = async (delayMs: number): Promise<void> => {
      if (this.stopped) return;
      try {
        if (this.rv === undefined) {
          this.relists++;
          await this.list();
        }
        await this.watch();
      } catch {
        this.rv = undefined;
        setTimeout(() => void again(Math.min(delayMs * 2, 2_000)), delayMs);
      }
    };
    // A short pause before reconnecting, so an API server that refuses watches is not hammered.
    setTimeout(() => void again(100), 50);
  }
}

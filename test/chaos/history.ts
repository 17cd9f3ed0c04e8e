/**
 * Records every status each DistributedTransaction of a namespace went through,
 * with a list+watch that reconnects (from the last resourceVersion, or a fresh
 * list when that is gone) across kube-apiserver and etcd restarts. A gap during
 * a restart may hide intermediate states, never reorder them, so the checks in
 * invariants.ts stay sound.
 */
import * as k8s from '@kubernetes/client-node';
import type { DistributedTransaction } from '../../src/api/types.js';
import { GROUP, PLURAL, VERSION } from '../../src/api/types.js';

export interface Seen {
  phase?: string;
  decision?: string;
  rv?: string;
}

export class HistoryRecorder {
  readonly history = new Map<string, Seen[]>();
  reconnects = 0;
  private stopped = false;
  private ctrl: AbortController | undefined;
  private rv: string | undefined;

  constructor(private readonly kc: k8s.KubeConfig, private readonly ns: string) {}

  async start(): Promise<void> {
    await this.list();
    await this.watch();
  }

  stop(): void {
    this.stopped = true;
    this.ctrl?.abort();
  }

  private record(obj: DistributedTransaction): void {
    const h = this.history.get(obj.metadata.name) ?? [];
    const last = h.at(-1);
    if (last?.rv === obj.metadata.resourceVersion) return;
    h.push({ phase: obj.status?.phase, decision: obj.status?.decision, rv: obj.metadata.resourceVersion });
    this.history.set(obj.metadata.name, h);
  }

  private async list(): Promise<void> {
    const api = this.kc.makeApiClient(k8s.CustomObjectsApi);
    const res = (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: this.ns })) as {
      items: DistributedTransaction[];
      metadata: { resourceVersion: string };
    };
    for (const o of res.items) this.record(o);
    this.rv = res.metadata.resourceVersion;
  }

  private async watch(): Promise<void> {
    this.ctrl = await new k8s.Watch(this.kc).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${this.ns}/${PLURAL}`,
      { resourceVersion: this.rv, allowWatchBookmarks: true },
      (type, obj: DistributedTransaction) => {
        if (type === 'ERROR') {
          this.rv = undefined; // 410 Gone: relist
          return;
        }
        if (obj?.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
        if (type !== 'BOOKMARK') this.record(obj);
      },
      () => this.reconnect(),
    );
  }

  private reconnect(): void {
    if (this.stopped) return;
    this.reconnects++;
    const again = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        if (this.rv === undefined) await this.list();
        await this.watch();
      } catch {
        this.rv = undefined;
        setTimeout(() => void again(), 300);
      }
    };
    setTimeout(() => void again(), 100);
  }
}

/**
 * Kubernetes Events (events.k8s.io/v1) for transactions, aggregated: a repeat
 * of the same reason on the same object within `seriesWindowMs` updates the
 * existing Event's series (count, last time) instead of creating
 * a new object, so a participant failing a thousand times makes one Event.
 * Events are best effort: a failure to record one is logged, never retried.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DistributedTransaction } from '../api/types.js';
import type { EventIntent } from '../engine/types.js';

interface Series {
  name: string;
  count: number;
  firstSeen: number;
}

export interface EventSink {
  record(tx: DistributedTransaction, intent: EventIntent): void;
}

export class EventRecorder implements EventSink {
  private readonly api: k8s.EventsV1Api;
  private readonly series = new Map<string, Series>();

  constructor(
    kc: k8s.KubeConfig,
    private readonly logger: Logger,
    private readonly instance: string,
    private readonly now: () => number,
    private readonly seriesWindowMs = 600_000,
  ) {
    this.api = kc.makeApiClient(k8s.EventsV1Api);
  }

  record(tx: DistributedTransaction, intent: EventIntent): void {
    void this.write(tx, intent).catch((err) =>
      this.logger.warn({ namespace: tx.metadata.namespace, transaction: tx.metadata.name, reason: intent.reason, err: String(err) }, 'could not record event'),
    );
  }

  private async write(tx: DistributedTransaction, intent: EventIntent): Promise<void> {
    const key = `${tx.metadata.uid}/${intent.type}/${intent.reason}`;
    const now = this.now();
    const note = intent.message.slice(0, 1024);
    const existing = this.series.get(key);
    if (existing && now - existing.firstSeen < this.seriesWindowMs) {
      existing.count += 1;
      await this.api.patchNamespacedEvent(
        {
          name: existing.name,
          namespace: tx.metadata.namespace,
          // Only the series may change: events.k8s.io/v1 refuses edits of note, reason, type, ...
          body: { series: { count: existing.count, lastObservedTime: microTime(now) } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      return;
    }
    const name = `${tx.metadata.name}.${randomBytes(8).toString('hex')}`;
    this.series.set(key, { name, count: 1, firstSeen: now });
    if (this.series.size > 10_000) this.series.delete(this.series.keys().next().value!);
    await this.api.createNamespacedEvent({
      namespace: tx.metadata.namespace,
      body: {
        metadata: { name, namespace: tx.metadata.namespace },
        eventTime: new k8s.V1MicroTime(now),
        reportingController: 'kubetx.io/operator',
        reportingInstance: this.instance,
        action: intent.reason,
        reason: intent.reason,
        type: intent.type,
        note,
        regarding: {
          apiVersion: tx.apiVersion,
          kind: tx.kind,
          name: tx.metadata.name,
          namespace: tx.metadata.namespace,
          uid: tx.metadata.uid,
        },
      },
    });
  }
}

/** metav1.MicroTime wants exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

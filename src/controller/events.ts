/**
 * Kubernetes Events (events.k8s.io/v1) for transactions, aggregated and
 * rate-limited in the manner of client-go's EventCorrelator:
 *
 *   - a series per (object, type, reason, branch, method): the first
 *     occurrence is created at once; repeats with the same note within
 *     `seriesWindowMs` only count in memory, and the count is written as one
 *     series PATCH per series at most every `flushMs` (a participant failing
 *     a thousand times makes one Event and a PATCH every `flushMs`, not a
 *     thousand PATCHes). events.k8s.io/v1 forbids editing a note, so a repeat
 *     with a different note (the error changed) starts a new Event: the
 *     latest Event of a series always carries the latest error;
 *   - a token bucket per object on Event API requests (`burst`, then one per
 *     `refillMs`, client-go's spam filter), so no transaction can flood the
 *     API server with Events whatever it does; what the bucket refuses is
 *     counted (`kubetx_events_total{result="dropped"}`) and the series count
 *     catches up at the next flush that gets a token.
 *
 * Events are best effort: a failure to record one is logged and counted
 * (`result="failed"`), never retried; a series PATCH that finds its Event
 * gone (expired, deleted) creates it anew with the count so far.
 * `flush()` writes pending counts (on shutdown).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DistributedTransaction } from '../api/types.js';
import type { EventIntent } from '../engine/types.js';
import { setLongTimeout, type LongTimer } from './timers.js';

export interface EventSink {
  record(tx: DistributedTransaction, intent: EventIntent): void;
}

export type EventResult = 'created' | 'patched' | 'coalesced' | 'dropped' | 'failed';

export interface EventRecorderOptions {
  /** A repeat this long after the series began starts a new Event. @default 600_000 */
  seriesWindowMs?: number;
  /** Pending repeats of a series are written at most this often. @default 30_000 */
  flushMs?: number;
  /** Event API requests one object may make at once. @default 25 */
  burst?: number;
  /** One more request per object each this long. @default 300_000 */
  refillMs?: number;
  /** Series tracked at most (oldest forgotten first). @default 10_000 */
  maxSeries?: number;
  onResult?: (result: EventResult) => void;
}

/** What an Event needs of its transaction (not the whole object: payloads stay out of memory). */
interface Regarding {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string };
}

interface Series {
  tx: Regarding;
  name: string;
  /** What the Event says: kept to recreate it, and to tell a repeat from a new error. */
  intent: EventIntent;
  firstSeen: number;
  /** Occurrences so far, and how many of them the API server has been told of. */
  count: number;
  written: number;
  lastSeen: number;
  flush?: LongTimer;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The longest Event name: a DNS subdomain. */
const MAX_NAME = 253;

/**
 * `<transaction>.<16 hex>`; a transaction name too long for that keeps its
 * first 200 characters and a hash of the whole name, so long names stay
 * distinct and the Event is still valid (before: names over 236 characters
 * got no Event at all).
 */
export function eventName(txName: string, random: string = randomBytes(8).toString('hex')): string {
  if (txName.length + 1 + random.length <= MAX_NAME) return `${txName}.${random}`;
  const head = txName.slice(0, 200).replace(/[-.]+$/, '');
  const hash = createHash('sha256').update(txName).digest('hex').slice(0, 10);
  return `${head}-${hash}.${random}`;
}

export class EventRecorder implements EventSink {
  private readonly api: k8s.EventsV1Api;
  private readonly series = new Map<string, Series>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly o: Required<Omit<EventRecorderOptions, 'onResult'>> & Pick<EventRecorderOptions, 'onResult'>;

  constructor(
    kc: k8s.KubeConfig,
    private readonly logger: Logger,
    private readonly instance: string,
    private readonly now: () => number,
    options: EventRecorderOptions = {},
  ) {
    this.api = kc.makeApiClient(k8s.EventsV1Api);
    this.o = { seriesWindowMs: 600_000, flushMs: 30_000, burst: 25, refillMs: 300_000, maxSeries: 10_000, ...options };
  }

  record(tx: DistributedTransaction, intent: EventIntent): void {
    const key = `${tx.metadata.uid}/${intent.type}/${intent.reason}/${intent.branch ?? ''}/${intent.method ?? ''}`;
    const now = this.now();
    const existing = this.series.get(key);
    if (existing && existing.intent.message !== intent.message) {
      // A new error for the same branch and method: the old series' count goes out, a new Event says what is failing now.
      void this.flushSeries(key, true);
      this.forget(key);
    } else if (existing && now - existing.firstSeen < this.o.seriesWindowMs) {
      existing.count += 1;
      existing.lastSeen = now;
      this.o.onResult?.('coalesced');
      existing.flush ??= setLongTimeout(() => void this.flushSeries(key), this.o.flushMs);
      return;
    }
    if (existing) this.forget(key);
    if (!this.take(tx.metadata.uid, now)) {
      this.o.onResult?.('dropped');
      return;
    }
    const regarding: Regarding = { apiVersion: tx.apiVersion, kind: tx.kind, metadata: { name: tx.metadata.name, namespace: tx.metadata.namespace, uid: tx.metadata.uid } };
    const s: Series = { tx: regarding, name: eventName(tx.metadata.name), intent, firstSeen: now, count: 1, written: 1, lastSeen: now };
    this.series.set(key, s);
    if (this.series.size > this.o.maxSeries) this.forget(this.series.keys().next().value!);
    void this.create(s).then(
      () => this.o.onResult?.('created'),
      (err) => this.failed(s.tx, intent.reason, err),
    );
  }

  /** Writes every pending series count now (on shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.series.keys()].map((k) => this.flushSeries(k, true)));
  }

  private async flushSeries(key: string, final = false): Promise<void> {
    const s = this.series.get(key);
    if (s) await this.flushCount(key, s, final);
  }

  private async flushCount(key: string, s: Series, final: boolean): Promise<void> {
    if (!s) return;
    s.flush?.clear();
    s.flush = undefined;
    if (s.count === s.written) return;
    if (!final && !this.take(s.tx.metadata.uid, this.now())) {
      this.o.onResult?.('dropped');
      // The count is kept: it goes out with the next flush that gets a token.
      if (this.series.get(key) === s) s.flush = setLongTimeout(() => void this.flushSeries(key), this.o.flushMs);
      return;
    }
    const count = s.count;
    try {
      await this.api.patchNamespacedEvent(
        {
          name: s.name,
          namespace: s.tx.metadata.namespace,
          // Only the series may change: events.k8s.io/v1 refuses edits of note, reason, type, ...
          body: { series: { count, lastObservedTime: microTime(s.lastSeen) } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      s.written = Math.max(s.written, count);
      this.o.onResult?.('patched');
    } catch (err) {
      if (statusCode(err) !== 404) return this.failed(s.tx, s.intent.reason, err);
      // The Event is gone (its TTL passed, or someone deleted it): a new one carries the series on.
      s.name = eventName(s.tx.metadata.name);
      try {
        await this.create(s, count);
        s.written = Math.max(s.written, count);
        this.o.onResult?.('created');
      } catch (again) {
        this.failed(s.tx, s.intent.reason, again);
      }
    }
  }

  /** A token from the object's bucket, refilled one per refillMs up to burst. */
  private take(uid: string, now: number): boolean {
    let b = this.buckets.get(uid);
    if (!b) {
      b = { tokens: this.o.burst, at: now };
      this.buckets.set(uid, b);
      if (this.buckets.size > this.o.maxSeries) this.buckets.delete(this.buckets.keys().next().value!);
    }
    const refilled = Math.floor((now - b.at) / this.o.refillMs);
    if (refilled > 0) {
      b.tokens = Math.min(this.o.burst, b.tokens + refilled);
      b.at += refilled * this.o.refillMs;
    }
    if (b.tokens <= 0) return false;
    b.tokens -= 1;
    return true;
  }

  private forget(key: string): void {
    this.series.get(key)?.flush?.clear();
    this.series.delete(key);
  }

  private failed(tx: Regarding, reason: string, err: unknown): void {
    this.o.onResult?.('failed');
    this.logger.warn({ namespace: tx.metadata.namespace, transaction: tx.metadata.name, reason, err: String(err) }, 'could not record event');
  }

  /** Creates the series' Event; with `count` > 1 it carries the series so far (a re-creation). */
  private async create(s: Series, count = 1): Promise<void> {
    const { tx, intent } = s;
    await this.api.createNamespacedEvent({
      namespace: tx.metadata.namespace,
      body: {
        metadata: { name: s.name, namespace: tx.metadata.namespace },
        eventTime: new k8s.V1MicroTime(s.firstSeen),
        reportingController: 'kubetx.io/operator',
        reportingInstance: this.instance,
        action: intent.reason,
        reason: intent.reason,
        type: intent.type,
        note: intent.message.slice(0, 1024),
        ...(count > 1 ? { series: { count, lastObservedTime: new k8s.V1MicroTime(s.lastSeen) } } : {}),
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

/** The HTTP status of a failed client-node request, if it has one. */
function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.code ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** metav1.MicroTime wants exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

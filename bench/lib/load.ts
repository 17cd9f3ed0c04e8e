/**
 * Load generation and end-to-end timing. One watch per namespace sees every
 * phase change; a transaction's latency is from just before its create
 * request to the watch event that shows it in a terminal phase. No polling.
 */
import type { DistributedTransaction } from '../../src/api/types.js';
import { Api, ApiError } from './kube.js';
import { terminalPhases, txPath } from './manifests.js';

interface Waiter {
  phases: ReadonlySet<string>;
  resolve(r: { phase: string; at: number }): void;
}

export class Tracker {
  private readonly waiters = new Map<string, Waiter>();
  /** Latest phase seen per name (for events that arrive before the waiter: a create's response can lose the race with the watch). */
  private readonly phases = new Map<string, string>();
  private readonly w: { stop(): void; ready: Promise<void> };
  /** Called for every event (the scale scenario counts pending transactions with it). */
  listener?: (type: string, tx: DistributedTransaction) => void;
  events = 0;

  constructor(api: Api, namespace: string) {
    this.w = api.watch(txPath(namespace), (type, obj: DistributedTransaction) => this.onEvent(type, obj));
  }

  ready(): Promise<void> {
    return this.w.ready;
  }

  stop(): void {
    this.w.stop();
  }

  /** Register before creating the object. */
  wait(name: string, phases: ReadonlySet<string> = terminalPhases): Promise<{ phase: string; at: number }> {
    return new Promise((resolve) => {
      const seen = this.phases.get(name);
      if (seen && phases.has(seen)) {
        resolve({ phase: seen, at: performance.now() });
        return;
      }
      this.waiters.set(name, { phases, resolve });
    });
  }

  forget(name: string): void {
    this.waiters.delete(name);
    this.phases.delete(name);
  }

  private onEvent(type: string, tx: DistributedTransaction): void {
    this.events++;
    const at = performance.now();
    const name = tx.metadata.name;
    const phase = tx.status?.phase ?? '';
    this.listener?.(type, tx);
    if (type === 'DELETED') return;
    const w = this.waiters.get(name);
    if (w) {
      if (w.phases.has(phase)) {
        this.waiters.delete(name);
        w.resolve({ phase, at });
      }
    } else if (phase && terminalPhases.has(phase)) {
      // Only kept for a waiter that has not registered yet; bounded by the run's size.
      this.phases.set(name, phase);
    }
  }
}

export interface Sample {
  name: string;
  start: number;
  end: number;
  phase: string;
}

/**
 * POST with a few retries on transient server errors (429/5xx, socket resets). Set-up passes more
 * `attempts`: just after a CRD and an admission policy are installed, the policy's type check answers
 * 503 "Resource kind … not found" for a moment.
 */
export async function createTx(api: Api, tx: DistributedTransaction, parse = false, attempts = 6): Promise<DistributedTransaction | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await api.raw('POST', txPath(tx.metadata.namespace), tx);
      if (r.status === 201 || r.status === 200) return parse ? (JSON.parse(r.body) as DistributedTransaction) : undefined;
      if (r.status === 409 && !parse) return undefined; // AlreadyExists after a retried request that had landed
      if (attempt >= attempts - 1 || (r.status !== 429 && r.status < 500)) throw new ApiError(r.status, r.body, `create ${tx.metadata.name}`);
    } catch (err) {
      if (err instanceof ApiError || attempt >= attempts - 1) throw err;
    }
    await new Promise((r) => setTimeout(r, Math.min(500, 50 * (attempt + 1))));
  }
}

export interface LoadResult {
  samples: Sample[];
  /** Samples that finished inside the measurement window. */
  measured: Sample[];
  windowMs: number;
  created: number;
  errors: number;
}

/**
 * Closed loop: `concurrency` clients, each creates a transaction and waits for
 * its terminal phase before the next. Runs warmupMs + durationMs, then waits
 * for every transaction in flight to finish (so the next figure starts from
 * an idle operator). Throughput counts terminal events inside the window.
 */
export async function closedLoop(o: {
  api: Api;
  tracker: Tracker;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  make: (name: string) => DistributedTransaction;
  prefix: string;
  /** Stop after this many creates in total (writes-per-transaction runs). */
  maxCreates?: number;
  drainTimeoutMs?: number;
}): Promise<LoadResult> {
  const samples: Sample[] = [];
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupMs;
  const stopAt = measureFrom + o.durationMs;
  let seq = 0;
  let errors = 0;
  const client = async () => {
    while (performance.now() < stopAt && (o.maxCreates === undefined || seq < o.maxCreates)) {
      const name = `${o.prefix}-${seq++}`;
      const done = o.tracker.wait(name);
      const start = performance.now();
      try {
        await createTx(o.api, o.make(name));
      } catch (err) {
        errors++;
        o.tracker.forget(name);
        if (errors <= 3) process.stderr.write(`[bench] ${(err as Error).message}\n`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), o.drainTimeoutMs ?? 120_000).unref());
      const r = await Promise.race([done, timeout]);
      if (!r) {
        errors++;
        o.tracker.forget(name);
        continue;
      }
      o.tracker.forget(name);
      samples.push({ name, start, end: r.at, phase: r.phase });
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, client));
  const measured = samples.filter((s) => s.end >= measureFrom && s.end <= stopAt);
  return { samples, measured, windowMs: o.maxCreates === undefined ? o.durationMs : Math.max(...samples.map((s) => s.end)) - t0, created: seq, errors };
}

/**
 * Open loop: transactions arrive at a fixed rate whatever the system does
 * (evenly spaced), for durationMs; then waits for all of them.
 */
export async function openLoop(o: {
  api: Api;
  tracker: Tracker;
  ratePerSec: number;
  durationMs: number;
  make: (name: string) => DistributedTransaction;
  prefix: string;
}): Promise<LoadResult> {
  const samples: Sample[] = [];
  const inflight: Promise<void>[] = [];
  const interval = 1000 / o.ratePerSec;
  const t0 = performance.now();
  let errors = 0;
  let i = 0;
  for (;;) {
    const due = t0 + i * interval;
    if (due - t0 >= o.durationMs) break;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const name = `${o.prefix}-${i++}`;
    const done = o.tracker.wait(name);
    // Latency counts from the scheduled arrival, so a slow client cannot hide queueing (no coordinated omission).
    const start = due;
    inflight.push(
      createTx(o.api, o.make(name)).then(
        async () => {
          const r = await done;
          o.tracker.forget(name);
          samples.push({ name, start, end: r.at, phase: r.phase });
        },
        () => {
          errors++;
          o.tracker.forget(name);
        },
      ),
    );
  }
  await Promise.all(inflight);
  return { samples, measured: samples, windowMs: o.durationMs, created: i, errors };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function latencies(samples: Sample[]): { p50: number; p90: number; p99: number; max: number; n: number } {
  const d = samples.map((s) => s.end - s.start).sort((a, b) => a - b);
  return { p50: percentile(d, 50), p90: percentile(d, 90), p99: percentile(d, 99), max: d[d.length - 1] ?? NaN, n: d.length };
}

/**
 * Set-up: one transaction through the operator, which must commit within `timeoutMs`. With
 * `wantFinalizer`, again (at most 50 more) until a create comes back carrying kubetx.io/finalizer:
 * the API server applies a newly created admission policy a moment later. Returns the name of the
 * last probe and whether its create carried the finalizer.
 */
export async function commitProbe(o: {
  api: Api;
  tracker: Tracker;
  make: (name: string) => DistributedTransaction;
  prefix: string;
  wantFinalizer: boolean;
  timeoutMs?: number;
}): Promise<{ name: string; finalizerFromCreate: boolean }> {
  for (let i = 0; ; i++) {
    const name = `${o.prefix}-${i}`;
    const done = o.tracker.wait(name);
    // More attempts than a load's create: just after a CRD and a policy are installed, creates answer 503 for a moment.
    const created = await createTx(o.api, o.make(name), true, 80);
    const r = await Promise.race([done, new Promise<undefined>((res) => setTimeout(() => res(undefined), o.timeoutMs ?? 30_000).unref())]);
    if (r?.phase !== 'Committed') throw new Error(`probe transaction ${name} did not commit (${r?.phase ?? 'timeout'}); is the operator working?`);
    const finalizerFromCreate = !!created?.metadata.finalizers?.includes('kubetx.io/finalizer');
    if (!o.wantFinalizer || finalizerFromCreate || i >= 50) return { name, finalizerFromCreate };
  }
}

/**
 * The operator's Prometheus metrics, created at start and initialised to zero
 * where the label values are known (controller-runtime's habit), so dashboards
 * and alerts see series before the first event.
 *
 * Two families. The `kubetx_*` ones speak of transactions (outcomes, branch
 * calls, decisions, Events, flow control). The others carry the names, labels,
 * help texts and buckets of controller-runtime and client-go, so dashboards and
 * alerts written for any Go controller work unchanged:
 * controller_runtime_* (pkg/internal/controller/metrics), workqueue_*
 * (pkg/internal/metrics/workqueue.go, labels name and controller) and
 * rest_client_* (pkg/metrics/client_go_adapter.go). docs/metrics.md lists them all.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Method } from '../engine/types.js';
import type { QueueMetrics } from './queue.js';
import type { RestClientSink } from './rest-client-metrics.js';

/** The controller label: controller-runtime names a controller after its kind, lower-cased. */
export const CONTROLLER_NAME = 'distributedtransaction';

/** controller-runtime's controller_runtime_reconcile_time_seconds buckets. */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15,
  20, 25, 30, 40, 50, 60,
];
/** prometheus.ExponentialBuckets(10e-9, 10, 12): 1e-8 s … 1000 s, as controller-runtime's workqueue histograms. */
const WORKQUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => Number(`1e${i - 8}`));
/** client-go / controller-runtime rest_client_request_duration_seconds buckets. */
const REST_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

/** What the metrics read from the work queue at scrape time. */
export interface QueueSnapshot {
  /** Keys to be handed out (client-go's depth). */
  depth: number;
  /** Keys waiting for a worker (kubetx_workqueue_depth). */
  waiting: number;
  /** Keys being reconciled now. */
  active: number;
  unfinishedSeconds: number;
  longestSeconds: number;
}

/** The workqueue_* labels: controller-runtime names the queue after its controller. */
const WQ = { name: CONTROLLER_NAME, controller: CONTROLLER_NAME } as const;

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({ name: 'kubetx_reconcile_total', help: 'Reconciles by result (success, error, conflict).', labelNames: ['result'], registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({ name: 'kubetx_reconcile_time_seconds', help: 'Time of one reconcile (API reads and writes; participant calls run apart).', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly branchCalls = new Counter({ name: 'kubetx_branch_calls_total', help: 'Participant calls by method and gRPC status code (LOCAL_ERROR: no usable call).', labelNames: ['method', 'code'], registers: [this.registry] });
  readonly branchCallSeconds = new Histogram({ name: 'kubetx_branch_call_duration_seconds', help: 'Duration of participant calls.', labelNames: ['method'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  readonly statusWrites = new Counter({ name: 'kubetx_status_writes_total', help: 'Status subresource writes by result (ok, conflict, error).', labelNames: ['result'], registers: [this.registry] });
  readonly transactions = new Counter({ name: 'kubetx_transactions_total', help: 'Transactions that reached a terminal phase, by mode and result (the phase).', labelNames: ['mode', 'result'], registers: [this.registry] });
  readonly transactionSeconds = new Histogram({ name: 'kubetx_transaction_duration_seconds', help: 'Creation to terminal phase, by mode and result.', labelNames: ['mode', 'result'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600], registers: [this.registry] });
  /** Set by the manager: counts of unfinished transactions in its cache, keyed "mode/phase". */
  inFlightSource?: () => Map<string, number>;
  readonly inFlight = new Gauge({
    name: 'kubetx_transactions_in_flight',
    help: 'Transactions not yet terminal, by mode and phase (from the informer cache, at scrape time).',
    labelNames: ['mode', 'phase'],
    registers: [this.registry],
    collect: () => {
      if (this.inFlightSource) this.setInFlight(this.inFlightSource());
    },
  });
  /** Set by the manager: cached transactions with Stalled=True, keyed "mode/reason". */
  stalledSource?: () => Map<string, number>;
  readonly stalled = new Gauge({
    name: 'kubetx_transactions_stalled',
    help: 'Transactions whose second-phase calls keep failing (condition Stalled=True), by mode and reason (from the informer cache, at scrape time).',
    labelNames: ['mode', 'reason'],
    registers: [this.registry],
    collect: () => {
      if (!this.stalledSource) return;
      this.stalled.reset();
      for (const [key, n] of this.stalledSource()) {
        const [mode, reason] = key.split('/') as [string, string];
        this.stalled.set({ mode, reason }, n);
      }
    },
  });
  /** Set at start when flow control is on: what waits for capacity now. */
  flowControlSource?: () => { transactions: number; calls: number };
  readonly flowControlWaiting = new Gauge({
    name: 'kubetx_flow_control_waiting',
    help: 'Held back by flow control, at scrape time: transactions waiting in Pending (--max-forward-transactions) and participant calls waiting for an endpoint slot (--max-calls-per-endpoint).',
    labelNames: ['what'],
    registers: [this.registry],
    collect: () => {
      const w = this.flowControlSource?.() ?? { transactions: 0, calls: 0 };
      this.flowControlWaiting.set({ what: 'transactions' }, w.transactions);
      this.flowControlWaiting.set({ what: 'calls' }, w.calls);
    },
  });
  readonly decisions = new Counter({ name: 'kubetx_decisions_total', help: 'Decisions persisted, by mode and decision.', labelNames: ['mode', 'decision'], registers: [this.registry] });
  readonly escalations = new Counter({ name: 'kubetx_escalations_total', help: 'Transactions that need a human (retry budget spent, invalid spec).', labelNames: ['reason'], registers: [this.registry] });
  /** Set by the manager: the work queue's figures, read at scrape time. */
  queueSource?: () => QueueSnapshot;
  readonly queueDepth = new Gauge({
    name: 'kubetx_workqueue_depth',
    help: 'Keys waiting in the work queue for a worker (at scrape time).',
    registers: [this.registry],
    collect: () => {
      this.queueDepth.set(this.queueSource?.().waiting ?? 0);
    },
  });
  readonly queueAdds = new Counter({ name: 'kubetx_workqueue_adds_total', help: 'Adds to the work queue that were not no-ops (as workqueue_adds_total).', registers: [this.registry] });
  readonly queueRetries = new Counter({ name: 'kubetx_workqueue_retries_total', help: 'Rate-limited requeues after a failed reconcile.', registers: [this.registry] });
  readonly events = new Counter({ name: 'kubetx_events_total', help: 'Events by what became of them: created, patched (a series count written), coalesced (counted in memory), dropped (per-object rate limit), failed (the API server refused it; logged), skipped (not asked for by --events).', labelNames: ['result'], registers: [this.registry] });
  readonly leader = new Gauge({ name: 'kubetx_leader_election_master_status', help: '1 while this replica is the leader.', registers: [this.registry] });

  // Sharding (--shards; docs/scaling.md). Shard label values are 0…shards-1, at most 256.
  readonly shardsOwned = new Gauge({ name: 'kubetx_shards_owned', help: 'Shards this replica holds the Lease of.', registers: [this.registry] });
  readonly shardOwned = new Gauge({ name: 'kubetx_shard_owned', help: '1 for each shard this replica holds.', labelNames: ['shard'], registers: [this.registry] });
  readonly shardReplicas = new Gauge({ name: 'kubetx_shard_replicas', help: 'Live replicas this replica sees in the membership Leases (itself included).', registers: [this.registry] });
  readonly shardFilter = new Gauge({ name: 'kubetx_shard_filter', help: '1 for the filter in use: server (the API server sends only owned shards) or client (everything is watched and filtered here).', labelNames: ['mode'], registers: [this.registry] });
  readonly shardTransitions = new Counter({ name: 'kubetx_shard_transitions_total', help: 'Shards acquired, released (handed back on purpose) or lost (not renewed in time, or taken by another replica).', labelNames: ['change'], registers: [this.registry] });
  readonly watchEvents = new Counter({ name: 'kubetx_watch_events_total', help: 'Objects the transaction watch delivered (adds, updates, deletes, listed items), by whether they belong to a shard this replica owns (always true without sharding).', labelNames: ['owned'], registers: [this.registry] });

  // controller-runtime: pkg/internal/controller/metrics/metrics.go.
  readonly crReconcileTotal = new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller', labelNames: ['controller', 'result'], registers: [this.registry] });
  readonly crReconcileErrors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller', labelNames: ['controller'], registers: [this.registry] });
  readonly crReconcileTime = new Histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller', labelNames: ['controller'], buckets: RECONCILE_BUCKETS, registers: [this.registry] });
  readonly crMaxConcurrentReconciles = new Gauge({ name: 'controller_runtime_max_concurrent_reconciles', help: 'Maximum number of concurrent reconciles per controller', labelNames: ['controller'], registers: [this.registry] });
  readonly crActiveWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'],
    registers: [this.registry],
    collect: () => {
      this.crActiveWorkers.set({ controller: CONTROLLER_NAME }, this.queueSource?.().active ?? 0);
    },
  });

  // client-go's work queue as controller-runtime registers it: pkg/internal/metrics/workqueue.go (name = controller = the controller's name).
  readonly wqDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue by workqueue and priority',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
    collect: () => {
      this.wqDepth.set(WQ, this.queueSource?.().depth ?? 0);
    },
  });
  readonly wqAdds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name', 'controller'], registers: [this.registry] });
  readonly wqQueueDuration = new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested', labelNames: ['name', 'controller'], buckets: WORKQUEUE_BUCKETS, registers: [this.registry] });
  readonly wqWorkDuration = new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes.', labelNames: ['name', 'controller'], buckets: WORKQUEUE_BUCKETS, registers: [this.registry] });
  readonly wqUnfinished = new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
    labelNames: ['name', 'controller'],
    registers: [this.registry],
    collect: () => {
      this.wqUnfinished.set(WQ, this.queueSource?.().unfinishedSeconds ?? 0);
    },
  });
  readonly wqLongestRunning = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
    collect: () => {
      this.wqLongestRunning.set(WQ, this.queueSource?.().longestSeconds ?? 0);
    },
  });
  readonly wqRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of items added to the workqueue with a non-zero delay (rate-limited requeues, explicit RequeueAfter or AddAfter calls)',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
  });

  // client-go's REST client as controller-runtime registers it: pkg/metrics/client_go_adapter.go (rest-client-metrics.ts feeds them).
  readonly restRequests = new Counter({ name: 'rest_client_requests_total', help: 'Number of HTTP requests, partitioned by status code, method, and host.', labelNames: ['code', 'method', 'host'], registers: [this.registry] });
  readonly restLatency = new Histogram({ name: 'rest_client_request_duration_seconds', help: 'Request latency in seconds. Broken down by verb and host.', labelNames: ['verb', 'host'], buckets: REST_BUCKETS, registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kubetx_process_' });
    const controller = CONTROLLER_NAME;
    for (const result of ['error', 'requeue_after', 'requeue', 'success']) this.crReconcileTotal.inc({ controller, result }, 0);
    this.crReconcileErrors.inc({ controller }, 0);
    this.crReconcileTime.zero({ controller });
    this.crMaxConcurrentReconciles.set({ controller }, 0);
    this.wqAdds.inc(WQ, 0);
    this.wqRetries.inc(WQ, 0);
    this.wqQueueDuration.zero(WQ);
    this.wqWorkDuration.zero(WQ);
    for (const result of ['success', 'error', 'conflict']) this.reconcileTotal.inc({ result }, 0);
    for (const result of ['ok', 'conflict', 'error']) this.statusWrites.inc({ result }, 0);
    for (const method of ['Try', 'Confirm', 'Cancel'] as Method[]) this.branchCalls.inc({ method, code: 'OK' }, 0);
    for (const result of ['Committed', 'Aborted', 'Failed']) this.transactions.inc({ mode: 'TCC', result }, 0);
    for (const result of ['created', 'patched', 'coalesced', 'dropped', 'failed', 'skipped']) this.events.inc({ result }, 0);
  }

  /** The work queue's metrics sink (manager.ts hands it to the WorkQueue). */
  queueMetrics(): QueueMetrics {
    return {
      added: () => {
        this.wqAdds.inc(WQ);
        this.queueAdds.inc();
      },
      queued: (s) => this.wqQueueDuration.observe(WQ, s),
      worked: (s) => this.wqWorkDuration.observe(WQ, s),
      retried: () => this.wqRetries.inc(WQ),
    };
  }

  /** Where rest-client-metrics.ts reports each API request. */
  restClient(): RestClientSink {
    return {
      request: (code, method, host) => this.restRequests.inc({ code, method, host }),
      latency: (verb, host, seconds) => this.restLatency.observe({ verb, host }, seconds),
    };
  }

  /** Recomputes kubetx_transactions_in_flight from a snapshot of the cache (called at scrape time). */
  setInFlight(counts: Map<string, number>): void {
    this.inFlight.reset();
    for (const [key, n] of counts) {
      const [mode, phase] = key.split('/') as [string, string];
      this.inFlight.set({ mode, phase }, n);
    }
  }
}

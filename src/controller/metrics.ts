/**
 * The operator's Prometheus metrics, created at start and initialised to zero
 * where the label values are known (controller-runtime's habit), so dashboards
 * and alerts see series before the first event.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Method } from '../engine/types.js';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({ name: 'kubetx_reconcile_total', help: 'Reconciles by result (success, error, conflict).', labelNames: ['result'], registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({ name: 'kubetx_reconcile_time_seconds', help: 'Time of one reconcile, participant calls included.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
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
  readonly queueDepth = new Gauge({ name: 'kubetx_workqueue_depth', help: 'Keys waiting in the work queue.', registers: [this.registry] });
  readonly queueAdds = new Counter({ name: 'kubetx_workqueue_adds_total', help: 'Adds to the work queue.', registers: [this.registry] });
  readonly queueRetries = new Counter({ name: 'kubetx_workqueue_retries_total', help: 'Rate-limited requeues after a failed reconcile.', registers: [this.registry] });
  readonly events = new Counter({ name: 'kubetx_events_total', help: 'Events by what became of them: created, patched (a series count written), coalesced (counted in memory), dropped (per-object rate limit), failed (the API server refused it; logged), skipped (not asked for by --events).', labelNames: ['result'], registers: [this.registry] });
  readonly leader = new Gauge({ name: 'kubetx_leader_election_master_status', help: '1 while this replica is the leader.', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kubetx_process_' });
    for (const result of ['success', 'error', 'conflict']) this.reconcileTotal.inc({ result }, 0);
    for (const result of ['ok', 'conflict', 'error']) this.statusWrites.inc({ result }, 0);
    for (const method of ['Try', 'Confirm', 'Cancel'] as Method[]) this.branchCalls.inc({ method, code: 'OK' }, 0);
    for (const result of ['Committed', 'Aborted', 'Failed']) this.transactions.inc({ mode: 'TCC', result }, 0);
    for (const result of ['created', 'patched', 'coalesced', 'dropped', 'failed', 'skipped']) this.events.inc({ result }, 0);
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

/**
 * The operator's Prometheus metrics, created at start and initialised to zero
 * where the label values are known (controller-runtime's habit), so dashboards
 * and alerts see series before the first event.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Method, OutcomeKind } from '../engine/types.js';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({ name: 'kubetx_reconcile_total', help: 'Reconciles by result (success, error, conflict).', labelNames: ['result'], registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({ name: 'kubetx_reconcile_time_seconds', help: 'Time of one reconcile, participant calls included.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly participantCalls = new Counter({ name: 'kubetx_participant_calls_total', help: 'Participant calls by method and outcome (ok, refused, retryable, timeout).', labelNames: ['method', 'outcome'], registers: [this.registry] });
  readonly participantCallSeconds = new Histogram({ name: 'kubetx_participant_call_duration_seconds', help: 'Duration of participant calls.', labelNames: ['method'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  readonly statusWrites = new Counter({ name: 'kubetx_status_writes_total', help: 'Status subresource writes by result (ok, conflict, error).', labelNames: ['result'], registers: [this.registry] });
  readonly transactionsFinished = new Counter({ name: 'kubetx_transactions_finished_total', help: 'Transactions that reached a terminal phase, by mode and phase.', labelNames: ['mode', 'phase'], registers: [this.registry] });
  readonly decisions = new Counter({ name: 'kubetx_decisions_total', help: 'Decisions persisted, by mode and decision.', labelNames: ['mode', 'decision'], registers: [this.registry] });
  readonly escalations = new Counter({ name: 'kubetx_escalations_total', help: 'Transactions that need a human (retry budget spent, invalid spec).', labelNames: ['reason'], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'kubetx_workqueue_depth', help: 'Keys waiting in the work queue.', registers: [this.registry] });
  readonly queueAdds = new Counter({ name: 'kubetx_workqueue_adds_total', help: 'Adds to the work queue.', registers: [this.registry] });
  readonly leader = new Gauge({ name: 'kubetx_leader_election_master_status', help: '1 while this replica is the leader.', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kubetx_process_' });
    for (const result of ['success', 'error', 'conflict']) this.reconcileTotal.inc({ result }, 0);
    for (const result of ['ok', 'conflict', 'error']) this.statusWrites.inc({ result }, 0);
    const methods: Method[] = ['Try', 'Confirm', 'Cancel'];
    const outcomes: OutcomeKind[] = ['ok', 'refused', 'retryable', 'timeout'];
    for (const method of methods) for (const outcome of outcomes) this.participantCalls.inc({ method, outcome }, 0);
    for (const phase of ['Committed', 'Aborted', 'Failed']) this.transactionsFinished.inc({ mode: 'TCC', phase }, 0);
  }
}

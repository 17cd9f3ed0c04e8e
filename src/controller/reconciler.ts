/**
 * Reconciles one DistributedTransaction: drives the pure engine, starts the
 * participant calls it asks for, and persists status.
 *
 * The write-ahead rule lives here: when a step says `persistBeforeCalls` (it
 * took a decision), the status is written — with a resourceVersion
 * precondition — before any of that step's calls is made, and the calls are
 * made only if the write succeeded. Everything else is written when the
 * engine has nothing more to call: a transaction whose calls all succeed first
 * time costs two status writes (decision, outcome) whatever its number of
 * branches.
 *
 * Calls never run inside a reconcile: they start in the CallTracker and the
 * reconcile returns; when they have all ended the key is queued again and the
 * next reconcile steps the engine with their outcomes. A worker is therefore
 * held for API reads and writes only, never for a participant.
 *
 * Events follow the status: a step's Events are recorded only once this
 * operator has persisted the status that step produced (a writer that loses
 * the resourceVersion race records nothing, so two operators never both say
 * "Decided"); Events of steps whose status is carried in memory across a
 * batch of calls wait with it, and are dropped with it.
 *
 * Returns what the queue should do next; never retries by itself.
 */
import type { Logger } from 'pino';
import { isDeepStrictEqual } from 'node:util';
import type { DistributedTransaction, TransactionStatus } from '../api/types.js';
import { parseDuration, setCondition, step } from '../engine/index.js';
import { startTimeOf } from '../engine/start-time.js';
import { ABORT_ANNOTATION, RETRY_ANNOTATION, ackValue } from '../engine/intervention.js';
import type { CallOutcome, EventIntent, Step, StepOutput } from '../engine/types.js';
import { callParticipant, type CallerDeps, type CallObservation } from '../participants/caller.js';
import type { CallTracker } from './call-tracker.js';
import { disabledTracing, type TransactionTracing } from '../tracing/tracing.js';
import type { PayloadSource } from './payload-source.js';
import { FINALIZER, finalRecord, needsFinalizer, onDeletion, withoutFinalizer } from './deletion.js';
import { findSpecViolation, type SpecViolation } from './spec-checks.js';
import { finalPhases, terminalPhases } from './phases.js';
import type { EventSink } from './events.js';
import type { OperatorMetrics } from './metrics.js';
import type { StatusStore } from './status-writer.js';
import { forwardDeadline, waitMs, type Admission, type ForwardAdmission } from './admission.js';

export type ReconcileResult =
  | { kind: 'done'; requeueAfterMs?: number }
  /** The status write lost a race: re-read and decide again, now. */
  | { kind: 'conflict' };

export interface ReconcilerDeps {
  store: StatusStore;
  caller: CallerDeps;
  events: EventSink;
  metrics: OperatorMetrics;
  logger: Logger;
  now: () => number;
  /** Applied when a transaction sets no ttlAfterFinished; undefined = keep finished transactions. */
  defaultTtlMs?: number;
  /** --max-forward-transactions: not-started TCC/Saga transactions wait for capacity here. */
  admission?: ForwardAdmission;
  /** The engine with the operator's settings (makeStep); the defaults when unset. */
  step?: Step;
  /** Where participant calls run, off the workers. */
  calls: CallTracker;
  /** The payloads of a transaction whose cached copy has none (a live read); identity when unset. */
  payloads?: PayloadSource;
  /** Spans of transactions, phases and calls (docs/tracing.md); off when unset. */
  tracing?: TransactionTracing;
}

/** A guard against an engine bug looping forever inside one reconcile. */
const maxStepsPerReconcile = 64;

export const keyOf = (tx: DistributedTransaction) => `${tx.metadata.namespace}/${tx.metadata.name}`;

export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(initial: DistributedTransaction): Promise<ReconcileResult> {
    const { deps } = this;
    let tx = initial;
    const key = keyOf(tx);
    const log = deps.logger.child({ namespace: tx.metadata.namespace, transaction: tx.metadata.name, uid: tx.metadata.uid });
    if (tx.metadata.deletionTimestamp) {
      const action = onDeletion(tx);
      if (action.kind === 'ignore') {
        deps.calls.cancel(key);
        return { kind: 'done' };
      }
      if (action.kind === 'release') return this.release(tx, action.forced, log);
      // Undecided: the calls under way (Trys, Executes) need not finish before the rollback is decided.
      if (!tx.status?.decision) deps.calls.cancel(key);
      tx = action.tx;
    }
    // Calls still running: their end queues this key again.
    const batch = deps.calls.get(key);
    if (batch && batch.uid !== tx.metadata.uid) deps.calls.cancel(key);
    else if (batch && !batch.outcomes) return { kind: 'done' };
    const settled = deps.calls.take(key);

    // A finished transaction goes back through the engine only to answer a
    // human's new retry/abort request (refused, with an Event saying why).
    const pendingRequest = hasPendingRequest(tx);
    if (finalPhases.has(tx.status?.phase ?? '') && !pendingRequest) return this.expireFinished(tx, log);

    const invalid = findSpecViolation(tx, this.deps.caller.policy, this.deps.caller.services, this.deps.caller.broker);
    if (invalid && !tx.status?.decision && tx.status?.phase !== 'Failed') return this.refuseInvalid(tx, invalid, log);
    if (invalid && !tx.status?.decision && !pendingRequest) return { kind: 'done' };
    if (needsFinalizer(tx)) {
      // Before any call: from here on a deletion waits until the transaction has finished.
      const r = await deps.store.setFinalizers(tx, [...(tx.metadata.finalizers ?? []), FINALIZER]);
      if (r.kind === 'conflict') return { kind: 'conflict' };
      if (r.kind === 'gone') return { kind: 'done' };
      tx = r.tx;
    }
    if (!settled && deps.admission?.applies(tx) && !pendingRequest) {
      // Past its forward deadline it goes to the engine, which times it out (Cancel).
      const deadline = forwardDeadline(tx, parseDuration, deps.now());
      if (deadline === undefined || deps.now() < deadline) {
        const a = deps.admission.admit(tx);
        if (!a.admitted) return this.waitForCapacity(tx, a, deadline, log);
      }
    }

    let status: TransactionStatus | undefined = tx.status;
    let outcomes: CallOutcome[] = [];
    /** Events of steps not persisted yet. */
    let pending: EventIntent[] = [];
    if (settled?.outcomes) {
      if (isDeepStrictEqual(settled.base, tx.status)) {
        status = settled.stepStatus;
        outcomes = settled.outcomes;
        pending = settled.events;
      } else {
        // Someone else wrote the status while the calls ran: decide again from theirs.
        log.debug({ calls: settled.calls.length }, 'status changed while calls ran; their outcomes are dropped');
      }
    }
    let out: StepOutput | undefined;
    for (let i = 0; i < maxStepsPerReconcile; i++) {
      out = (deps.step ?? step)({ tx, status, outcomes, now: deps.now() });
      pending = [...pending, ...out.events];
      status = out.status;
      if (out.calls.length === 0) break;
      if (out.persistBeforeCalls) {
        const written = await this.persist(tx, status, log);
        if (!written) return { kind: 'conflict' };
        tx = written;
        this.emit(tx, pending, log);
        pending = [];
      }
      log.debug({ phase: status.phase, calls: out.calls.map((c) => `${c.branch}.${c.method}#${c.attempt}`) }, 'calling participants');
      const calling = tx;
      const phase = status.phase;
      const decision = status.decision;
      // One live read of the payloads for the whole batch, and only if the cache dropped them.
      let full: Promise<DistributedTransaction> | undefined;
      const withPayloads = () => (full ??= deps.payloads ? deps.payloads(calling) : Promise.resolve(calling));
      deps.calls.start(key, tx.metadata.uid, tx.status, status, out.calls, (call, signal) => this.call(withPayloads, call, phase, decision, signal, log), pending);
      return { kind: 'done' };
    }
    if (status && !isDeepStrictEqual(status, tx.status)) {
      const written = await this.persist(tx, status, log);
      if (!written) return { kind: 'conflict' };
      tx = written;
    }
    // Persisted, or nothing to persist (an answer that changes no status, e.g. a refused request already acknowledged).
    this.emit(tx, pending, log);
    if (finalPhases.has(tx.status?.phase ?? '')) {
      // A finished transaction may still owe an answer to a request deferred by the engine.
      const r = await this.expireFinished(tx, log);
      if (r.kind !== 'done' || out?.requeueAfterMs === undefined) return r;
      return { kind: 'done', requeueAfterMs: Math.min(r.requeueAfterMs ?? Infinity, out.requeueAfterMs) };
    }
    return { kind: 'done', requeueAfterMs: out?.requeueAfterMs };
  }

  /** Removes our finalizer from a deleted transaction, recording its final status (an Event and a log line). */
  private async release(tx: DistributedTransaction, forced: boolean, log: Logger): Promise<ReconcileResult> {
    this.deps.calls.cancel(keyOf(tx));
    const r = await this.deps.store.setFinalizers(tx, withoutFinalizer(tx));
    if (r.kind === 'conflict') return { kind: 'conflict' };
    if (r.kind === 'gone') return { kind: 'done' };
    const record = finalRecord(tx);
    this.deps.events.record(tx, forced
      ? { type: 'Warning', reason: 'ForcedDeletion', message: `removed by kubetx.io/force-delete before it finished: ${record}` }
      : { type: 'Normal', reason: 'Deleted', message: `removed after it finished: ${record}` });
    log.info({ phase: tx.status?.phase, decision: tx.status?.decision, forced, final: record }, 'deleted transaction released');
    return { kind: 'done' };
  }

  /** The transaction is gone: its calls are cancelled and their outcomes never used. */
  forget(key: string): void {
    this.deps.calls.cancel(key);
  }

  private async call(
    withPayloads: () => Promise<DistributedTransaction>,
    call: Parameters<typeof callParticipant>[2],
    phase: string | undefined,
    decision: string | undefined,
    signal: AbortSignal,
    log: Logger,
  ): Promise<CallObservation> {
    let tx: DistributedTransaction;
    try {
      tx = await withPayloads();
    } catch (err) {
      const now = this.deps.now();
      return { branch: call.branch, method: call.method, attempt: call.attempt, kind: 'retryable', message: (err as Error).message.slice(0, 512), finishedAt: now, durationMs: 0, code: 'LOCAL_ERROR' };
    }
    const span = (this.deps.tracing ?? disabledTracing).startCall(tx, call, phase, decision);
    const o = await callParticipant(this.deps.caller, tx, call, signal, span?.headers);
    span?.end(o);
    this.deps.metrics.branchCalls.inc({ method: call.method, code: o.code });
    this.deps.metrics.branchCallSeconds.observe({ method: call.method }, o.durationMs / 1000);
    if (o.kind !== 'ok' && !signal.aborted) {
      // The participant's own words stay in status.lastError: they may echo payload data.
      log.info({ branch: call.branch, method: call.method, attempt: call.attempt, phase, outcome: o.kind, code: o.code }, 'participant call failed');
      log.debug({ branch: call.branch, method: call.method, attempt: call.attempt, error: o.message }, 'participant call error text');
    }
    return o;
  }

  /** Writes status; returns the updated object, or undefined when another writer got there first. */
  private async persist(tx: DistributedTransaction, status: TransactionStatus, log: Logger): Promise<DistributedTransaction | undefined> {
    const result = await this.deps.store.writeStatus(tx, status);
    if (result.kind !== 'ok') {
      log.debug({ phase: status.phase, result: result.kind }, 'status write not applied');
      return undefined;
    }
    const before = tx.status;
    this.deps.tracing?.written(tx, status);
    if (status.decision && !before?.decision) {
      this.deps.metrics.decisions.inc({ mode: tx.spec.mode, decision: status.decision });
      log.info({ phase: status.phase, decision: status.decision }, 'decision persisted');
    }
    if (status.phase && status.phase !== before?.phase && terminalPhases.has(status.phase)) {
      this.deps.metrics.transactions.inc({ mode: tx.spec.mode, result: status.phase });
      const created = Date.parse(status.startTime ?? '');
      if (!Number.isNaN(created)) this.deps.metrics.transactionSeconds.observe({ mode: tx.spec.mode, result: status.phase }, Math.max(0, this.deps.now() - created) / 1000);
      if (status.phase === 'Failed') this.deps.metrics.escalations.inc({ reason: 'RetryBudgetExhausted' });
      log.info({ phase: status.phase, message: status.message }, 'transaction finished');
    }
    return result.tx;
  }

  private emit(tx: DistributedTransaction, events: EventIntent[], log: Logger): void {
    for (const e of events) {
      this.deps.events.record(tx, e);
      if (e.type === 'Warning') log.debug({ reason: e.reason, note: e.message }, 'event');
    }
  }

  /** Not admitted: say so once (Pending, Succeeded=Unknown WaitingForCapacity) and look again soon. */
  private async waitForCapacity(tx: DistributedTransaction, a: Extract<Admission, { admitted: false }>, deadline: number | undefined, log: Logger): Promise<ReconcileResult> {
    const now = this.deps.now();
    const requeueAfterMs = waitMs(deadline, now);
    const cond = tx.status?.conditions?.find((c) => c.type === 'Succeeded');
    if (tx.status?.phase === 'Pending' && cond?.reason === 'WaitingForCapacity') return { kind: 'done', requeueAfterMs };
    const message =
      a.share !== undefined
        ? `waiting for capacity: namespace ${tx.metadata.namespace} holds its fair share (${a.share} of --max-forward-transactions=${a.max}) while other namespaces wait`
        : `waiting for capacity: ${a.inForward} transactions in the forward phase (--max-forward-transactions=${a.max})`;
    const status: TransactionStatus = {
      ...tx.status,
      phase: 'Pending',
      observedGeneration: tx.metadata.generation,
      // The first write of a waiting transaction: from here on its timeout counts from this record.
      startTime: startTimeOf(tx.status, tx, now),
      message,
      conditions: setCondition(tx.status?.conditions, { type: 'Succeeded', status: 'Unknown', reason: 'WaitingForCapacity', message, observedGeneration: tx.metadata.generation }, now),
    };
    const written = await this.deps.store.writeStatus(tx, status);
    if (written.kind === 'conflict') return { kind: 'conflict' };
    if (written.kind === 'gone') return { kind: 'done' };
    log.debug({ inForward: a.inForward, max: a.max }, 'waiting for capacity');
    return { kind: 'done', requeueAfterMs };
  }

  /** A spec the operator will not act on: Failed before any call, with a condition and an Event. */
  private async refuseInvalid(tx: DistributedTransaction, v: SpecViolation, log: Logger): Promise<ReconcileResult> {
    const now = this.deps.now();
    const status: TransactionStatus = {
      ...tx.status,
      phase: 'Failed',
      observedGeneration: tx.metadata.generation,
      startTime: startTimeOf(tx.status, tx, now),
      completionTime: new Date(now).toISOString(),
      message: `${refusalTitle[v.reason]}: ${v.message}`,
      conditions: setCondition(tx.status?.conditions, { type: 'Succeeded', status: 'False', reason: v.reason, message: v.message, observedGeneration: tx.metadata.generation }, now),
    };
    const written = await this.deps.store.writeStatus(tx, status);
    if (written.kind === 'conflict') return { kind: 'conflict' };
    // Deleted meanwhile: nobody is left to tell, so no escalation and no Event.
    if (written.kind === 'gone') return { kind: 'done' };
    this.deps.metrics.escalations.inc({ reason: v.reason });
    this.deps.events.record(tx, { type: 'Warning', reason: v.reason, message: v.message });
    log.warn({ field: v.field, reason: v.reason, error: v.message }, 'transaction refused before any call');
    return { kind: 'done' };
  }

  /** ttlAfterFinished (or the operator's default): delete the finished object when it expires. */
  private async expireFinished(tx: DistributedTransaction, log: Logger): Promise<ReconcileResult> {
    let ttlMs = this.deps.defaultTtlMs;
    if (tx.spec.ttlAfterFinished) {
      try {
        ttlMs = parseDuration(tx.spec.ttlAfterFinished);
      } catch {
        return { kind: 'done' };
      }
    }
    const finished = Date.parse(tx.status?.completionTime ?? '');
    if (ttlMs === undefined || Number.isNaN(finished)) return { kind: 'done' };
    const remaining = finished + ttlMs - this.deps.now();
    if (remaining > 0) return { kind: 'done', requeueAfterMs: remaining };
    await this.deps.store.delete(tx);
    log.info({ phase: tx.status?.phase, ttlMs }, 'deleted finished transaction (ttlAfterFinished)');
    return { kind: 'done' };
  }
}

const refusalTitle: Record<SpecViolation['reason'], string> = {
  InvalidEndpoint: 'invalid endpoint',
  PayloadTooLarge: 'payload too large',
  PayloadTooDeep: 'payload too deep',
  InvalidBroker: 'invalid broker destination',
  BrokerNotConfigured: 'no broker configured',
};

/** A retry/abort annotation whose value the status has not acknowledged yet. */
function hasPendingRequest(tx: DistributedTransaction): boolean {
  const a = tx.metadata.annotations ?? {};
  const pending = (value: string | undefined, ack: string | undefined) => !!value && ackValue(value) !== ack;
  return pending(a[RETRY_ANNOTATION], tx.status?.retryAcknowledged) || pending(a[ABORT_ANNOTATION], tx.status?.abortAcknowledged);
}

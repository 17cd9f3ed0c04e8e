import { describe, expect, it } from 'vitest';
import { ABORT_ANNOTATION, MAX_ACK, MIN_INTERVENTION_INTERVAL_MS, RETRY_ANNOTATION, step, stepSaga, stepTcc } from '../../src/engine/index.js';
import type { DistributedTransaction, TransactionStatus } from '../../src/api/types.js';
import type { Step, StepOutput } from '../../src/engine/types.js';
import { T0, makeTx, outcome } from './engine-helpers.js';
import { b64, sagaTx } from './engine-saga-helpers.js';

const calls = (out: StepOutput) => out.calls.map((c) => `${c.method} ${c.branch}#${c.attempt}`);
const reasons = (out: StepOutput) => out.events.map((e) => e.reason);
const annotate = (tx: DistributedTransaction, annotations: Record<string, string>): DistributedTransaction => ({
  ...tx,
  metadata: { ...tx.metadata, annotations: { ...tx.metadata.annotations, ...annotations } },
});

/** Runs steps answering every call with `kind` until no call is left; returns the last output. */
function drive(run: Step, tx: DistributedTransaction, status: TransactionStatus | undefined, now: number, kind: 'ok' | 'retryable'): StepOutput {
  let out = run({ tx, status, outcomes: [], now });
  for (let i = 0; i < 20 && out.calls.length > 0; i++) {
    out = run({ tx, status: out.status, outcomes: out.calls.map((c) => outcome(c, kind, now)), now });
  }
  return out;
}

/** A TCC transaction Failed with decision Confirm: branch b's Confirm failed twice with maxAttempts 2. */
function failedTcc(): { tx: DistributedTransaction; status: TransactionStatus; now: number } {
  const tx = makeTx(['a', 'b'], { retry: { maxAttempts: 2, initialInterval: '100ms' } });
  const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
  let out = stepTcc({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0)), now: T0 });
  let now = T0;
  for (let i = 0; i < 5 && out.status.phase !== 'Failed'; i++) {
    const outcomes = out.calls.map((c) => outcome(c, c.branch === 'b' ? 'retryable' : 'ok', now, { message: 'UNAVAILABLE' }));
    out = stepTcc({ tx, status: out.status, outcomes, now });
    now += 1_000;
  }
  expect(out.status).toMatchObject({ phase: 'Failed', decision: 'Confirm' });
  return { tx, status: out.status, now };
}

describe('kubetx.io/retry', () => {
  it('TCC: resumes a Failed transaction from its decision with a fresh budget, once per value', () => {
    const { tx, status, now } = failedTcc();
    const retried = annotate(tx, { [RETRY_ANNOTATION]: '2025-03-01T13:00:00Z' });
    const s1 = stepTcc({ tx: retried, status, outcomes: [], now });
    expect(calls(s1)).toEqual(['Confirm b#1']);
    expect(s1.persistBeforeCalls).toBe(true);
    expect(s1.status).toMatchObject({ phase: 'Confirming', decision: 'Confirm', retryAcknowledged: '2025-03-01T13:00:00Z' });
    expect(s1.status.message).toMatch(/^Confirming resumed by kubetx\.io\/retry after: branch b: Confirm failed 2 times/);
    expect(s1.events[0]).toEqual({
      type: 'Normal',
      reason: 'RetryRequested',
      message: 'kubetx.io/retry=2025-03-01T13:00:00Z: attempt budget reset for 1 branch(es); resuming Confirming',
    });
    // The acknowledgement survives later steps (engines rebuild status), and the same value acts no more.
    const s2 = stepTcc({ tx: retried, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', now)], now });
    expect(s2.status).toMatchObject({ phase: 'Committed', retryAcknowledged: '2025-03-01T13:00:00Z' });
    expect(reasons(s2)).toEqual(['Committed']);
  });

  it('TCC: while Confirming, a branch waiting for its retry is called now, attempts counted afresh', () => {
    const tx = makeTx(['a'], { retry: { initialInterval: '1m' } });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0)], now: T0 });
    const s3 = stepTcc({ tx, status: s2.status, outcomes: [outcome(s2.calls[0]!, 'retryable', T0 + 1)], now: T0 + 1 });
    expect(s3.calls).toEqual([]);
    const s4 = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: 'x' }), status: s3.status, outcomes: [], now: T0 + 2 });
    expect(calls(s4)).toEqual(['Confirm a#1']);
    expect(s4.persistBeforeCalls).toBe(true);
  });

  it('a Failed transaction that never decided (invalid spec) stays Failed, with a Warning saying why', () => {
    const tx = makeTx(['a'], { timeout: 'soon' });
    const failed = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: 'r1' }), status: failed.status, outcomes: [], now: T0 + 5 });
    expect(s.calls).toEqual([]);
    expect(s.status).toMatchObject({ phase: 'Failed', retryAcknowledged: 'r1', message: failed.status.message });
    expect(s.events).toHaveLength(1);
    expect(s.events[0]).toMatchObject({ type: 'Warning', reason: 'RetryRefused' });
    expect(s.events[0]!.message).toMatch(/failed before deciding \(invalid spec: spec\.timeout/);
  });

  it('Saga: resumes Compensating after a spent Compensate budget', () => {
    const tx = sagaTx({ a: [], b: ['a'] }, { retry: { maxAttempts: 1 } });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepSaga({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0, { data: b64('ra') })], now: T0 });
    const s3 = stepSaga({ tx, status: s2.status, outcomes: [outcome(s2.calls[0]!, 'refused', T0)], now: T0 });
    expect(calls(s3)).toEqual(['Compensate a#1']);
    const s4 = stepSaga({ tx, status: s3.status, outcomes: [outcome(s3.calls[0]!, 'retryable', T0)], now: T0 });
    expect(s4.status).toMatchObject({ phase: 'Failed', decision: 'Compensate' });
    const s5 = stepSaga({ tx: annotate(tx, { [RETRY_ANNOTATION]: 'go' }), status: s4.status, outcomes: [], now: T0 + 1 });
    expect(s5.calls).toEqual([{ branch: 'a', method: 'Compensate', attempt: 1, result: b64('ra') }]);
    expect(s5.status).toMatchObject({ phase: 'Compensating', retryAcknowledged: 'go' });
    const s6 = stepSaga({ tx: annotate(tx, { [RETRY_ANNOTATION]: 'go' }), status: s5.status, outcomes: [outcome(s5.calls[0]!, 'ok', T0 + 1)], now: T0 + 1 });
    expect(s6.status).toMatchObject({ phase: 'Compensated', retryAcknowledged: 'go' });
  });

  it('values too long for status are acknowledged in a bounded form and not acted on twice; empty values are ignored', () => {
    const { tx, status, now } = failedTcc();
    const long = 'r'.repeat(5_000);
    const s1 = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: long }), status, outcomes: [], now });
    expect(s1.status.retryAcknowledged!.length).toBeLessThanOrEqual(MAX_ACK);
    const s2 = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: long }), status: s1.status, outcomes: [], now });
    expect(reasons(s2)).not.toContain('RetryRequested');
    // Another value, once the 10 s between requests have passed.
    const other = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: `${long}x` }), status: s1.status, outcomes: [], now: now + MIN_INTERVENTION_INTERVAL_MS });
    expect(reasons(other)).toContain('RetryRequested');
    const empty = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: '' }), status, outcomes: [], now });
    expect(empty.status).toEqual(status);
    expect(empty.events).toEqual([]);
  });
});

describe('kubetx.io/abort', () => {
  it('TCC: before the decision, cancels everything with the user’s reason, Try results recorded first', () => {
    const tx = makeTx(['a', 'b']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const aborted = annotate(tx, { [ABORT_ANNOTATION]: 'customer called' });
    const s2 = stepTcc({ tx: aborted, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0 + 1, { data: b64(c.branch) })), now: T0 + 1 });
    expect(s2.status).toMatchObject({
      phase: 'Cancelling',
      decision: 'Cancel',
      message: 'aborted by user: customer called',
      abortAcknowledged: 'customer called',
    });
    expect(s2.persistBeforeCalls).toBe(true);
    expect(s2.calls).toEqual([
      { branch: 'a', method: 'Cancel', attempt: 1, result: b64('a') },
      { branch: 'b', method: 'Cancel', attempt: 1, result: b64('b') },
    ]);
    expect(s2.events).toEqual([
      { type: 'Warning', reason: 'AbortRequested', message: 'aborted by user: customer called' },
      { type: 'Warning', reason: 'Decided', message: 'Cancel: aborted by user: customer called' },
    ]);
    const s3 = stepTcc({ tx: aborted, status: s2.status, outcomes: s2.calls.map((c) => outcome(c, 'ok', T0 + 2)), now: T0 + 2 });
    expect(s3.status).toMatchObject({ phase: 'Aborted', message: 'aborted by user: customer called', abortAcknowledged: 'customer called' });
  });

  it('TCC: once decided, the abort is refused and acknowledged; the transaction carries on', () => {
    const tx = makeTx(['a'], { retry: { initialInterval: '1m' } });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0)], now: T0 });
    const s3 = stepTcc({ tx, status: s2.status, outcomes: [outcome(s2.calls[0]!, 'retryable', T0)], now: T0 });
    const s4 = step({ tx: annotate(tx, { [ABORT_ANNOTATION]: 'too late' }), status: s3.status, outcomes: [], now: T0 + 1 });
    expect(s4.calls).toEqual([]);
    expect(s4.events).toEqual([{ type: 'Warning', reason: 'AbortRefused', message: 'transaction already decided Confirm; abort has no effect' }]);
    // Only the acknowledgement changed: the controller's end-of-reconcile write stores it.
    expect(s4.status).toEqual({ ...s3.status, abortAcknowledged: 'too late', interventionTime: new Date(T0 + 1).toISOString() });
  });

  it('a Failed transaction that never decided refuses the abort', () => {
    const tx = makeTx(['a'], { timeout: 'soon' });
    const failed = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s = stepTcc({ tx: annotate(tx, { [ABORT_ANNOTATION]: 'why not' }), status: failed.status, outcomes: [], now: T0 });
    expect(reasons(s)).toEqual(['AbortRefused']);
    expect(s.status).toMatchObject({ phase: 'Failed', abortAcknowledged: 'why not' });
  });

  it('Saga: before the decision, compensates what may have executed and starts nothing new', () => {
    const tx = sagaTx({ a: [], b: ['a'], c: [] });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    expect(calls(s1)).toEqual(['Execute a#1', 'Execute c#1']);
    const aborted = annotate(tx, { [ABORT_ANNOTATION]: 'stop' });
    const s2 = stepSaga({
      tx: aborted,
      status: s1.status,
      outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 1, { data: b64('ra') }), outcome(s1.calls[1]!, 'retryable', T0 + 1)],
      now: T0 + 1,
    });
    expect(s2.status).toMatchObject({ phase: 'Compensating', decision: 'Compensate', message: 'aborted by user: stop', abortAcknowledged: 'stop' });
    expect(s2.calls).toEqual([
      { branch: 'a', method: 'Compensate', attempt: 1, result: b64('ra') },
      { branch: 'c', method: 'Compensate', attempt: 1 },
    ]);
    expect(reasons(s2)).toEqual(['CallFailed', 'AbortRequested', 'Decided']);
    const s3 = drive(stepSaga, aborted, s2.status, T0 + 2, 'ok');
    expect(s3.status).toMatchObject({ phase: 'Compensated', message: 'aborted by user: stop' });
    expect(s3.status.branches!.map((b) => b.state)).toEqual(['Compensated', 'Pending', 'Compensated']);
  });

  it('Saga: an abort before anything ran ends Compensated at once, with no call', () => {
    const tx = sagaTx({ a: [] }, { annotations: { [ABORT_ANNOTATION]: 'changed my mind' } });
    const s = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.calls).toEqual([]);
    expect(s.status).toMatchObject({ phase: 'Compensated', decision: 'Compensate', progress: '1/1', abortAcknowledged: 'changed my mind' });
  });

  it('Saga: refused once compensation is decided, or once Completed', () => {
    const tx = sagaTx({ a: [] }, { retry: { initialInterval: '1m' } });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepSaga({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0)], now: T0 + 40_000 });
    expect(s2.status.decision).toBe('Compensate');
    const late = stepSaga({ tx: annotate(tx, { [ABORT_ANNOTATION]: 'x' }), status: s2.status, outcomes: [], now: T0 + 40_001 });
    expect(late.events[0]).toEqual({ type: 'Warning', reason: 'AbortRefused', message: 'transaction already decided Compensate; abort has no effect' });
    const done = drive(stepSaga, tx, undefined, T0, 'ok');
    expect(done.status.phase).toBe('Completed');
    const after = stepSaga({ tx: annotate(tx, { [ABORT_ANNOTATION]: 'x' }), status: done.status, outcomes: [], now: T0 + 1 });
    expect(after.events).toEqual([{ type: 'Warning', reason: 'AbortRefused', message: 'transaction already Completed; abort has no effect' }]);
    expect(after.status).toEqual({ ...done.status, abortAcknowledged: 'x', interventionTime: new Date(T0 + 1).toISOString() });
  });

  it('retry and abort together on an undecided TCC: budget reset, then cancelled', () => {
    const tx = makeTx(['a'], { retry: { initialInterval: '1m' } });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0)], now: T0 });
    const both = annotate(tx, { [RETRY_ANNOTATION]: '1', [ABORT_ANNOTATION]: 'stop' });
    const s3 = stepTcc({ tx: both, status: s2.status, outcomes: [], now: T0 + 1 });
    expect(reasons(s3)).toEqual(['RetryRequested', 'AbortRequested', 'Decided']);
    expect(calls(s3)).toEqual(['Cancel a#1']);
    expect(s3.status).toMatchObject({ retryAcknowledged: '1', abortAcknowledged: 'stop', decision: 'Cancel' });
  });
});

describe('requests are acted on at most once per 10 s', () => {
  it('a new kubetx.io/retry value every 200 ms for 30 s: at most 4 acted on, none lost, the latest counts', () => {
    // Cancelling, with a Cancel that keeps failing (a 1 m backoff each time).
    const tx = makeTx(['a'], { retry: { initialInterval: '1m', maxInterval: '1m' } });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    let out = stepTcc({ tx, status: s1.status, outcomes: [{ ...outcome(s1.calls[0]!, 'refused', T0), message: 'no' }], now: T0 });
    expect(out.status.decision).toBe('Cancel');
    let cancels = out.calls.length;
    let acted = 0;
    let status = out.status;
    for (let i = 1; i <= 150; i++) {
      const now = T0 + i * 200;
      const value = `spam-${i}`;
      out = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: value }), status, outcomes: [], now });
      if (out.events.some((e) => e.reason === 'RetryRequested')) acted++;
      // Each Cancel the step asks for fails again at once.
      const fails = out.calls.map((c) => outcome(c, 'retryable', now));
      cancels += out.calls.length;
      status = fails.length > 0 ? stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: value }), status: out.status, outcomes: fails, now }).status : out.status;
      if (out.status.retryAcknowledged !== value) expect(out.requeueAfterMs).toBeLessThanOrEqual(MIN_INTERVENTION_INTERVAL_MS);
    }
    // Before: every value acted on (150 immediate Cancels). Now one per 10 s: at t=0.2 s, 10.2 s, 20.2 s (and 30.2 s is past the run).
    expect(acted).toBeLessThanOrEqual(4);
    expect(cancels).toBeLessThanOrEqual(1 + 4);
    // The latest value is acted on once its turn comes.
    const later = stepTcc({ tx: annotate(tx, { [RETRY_ANNOTATION]: 'spam-150' }), status, outcomes: [], now: T0 + 150 * 200 + MIN_INTERVENTION_INTERVAL_MS });
    expect(later.status.retryAcknowledged).toBe('spam-150');
  });

  it('abort requests on a finished transaction: one acknowledgement (status write + Event) per 10 s', () => {
    const tx = makeTx(['a']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0)], now: T0 });
    let status = stepTcc({ tx, status: s2.status, outcomes: [outcome(s2.calls[0]!, 'ok', T0)], now: T0 }).status;
    expect(status.phase).toBe('Committed');
    let writes = 0;
    for (let i = 1; i <= 50; i++) {
      const out = stepTcc({ tx: annotate(tx, { [ABORT_ANNOTATION]: `a${i}` }), status, outcomes: [], now: T0 + i * 200 });
      if (JSON.stringify(out.status) !== JSON.stringify(status)) writes++;
      status = out.status;
    }
    expect(writes).toBeLessThanOrEqual(2);
  });
});


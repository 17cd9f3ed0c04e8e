import { describe, expect, it } from 'vitest';
import { makeStep, makeStepMessage, SOURCE_BRANCH, step, stepMessage } from '../../src/engine/index.js';
import { effectiveRetryPolicy, retryDelayMs } from '../../src/engine/backoff.js';
import type { DistributedTransaction, MessageSpec, TransactionStatus } from '../../src/api/types.js';
import type { CallOutcome } from '../../src/engine/types.js';
import { T0, makeTx, outcome } from './engine-helpers.js';

const iso = (ms: number) => new Date(ms).toISOString();

function messageTx(names: string[], message: Partial<MessageSpec> = {}, opts: Parameters<typeof makeTx>[1] = {}): DistributedTransaction {
  const tx = makeTx(names, { ...opts, mode: 'Message' });
  tx.spec.message = { source: { endpoint: { service: { name: 'order', port: 50051 } }, operation: 'createOrder' }, ...message };
  return tx;
}

const withDecision = (tx: DistributedTransaction, decision: 'Commit' | 'Rollback'): DistributedTransaction => ({
  ...tx,
  metadata: { ...tx.metadata, generation: 2 },
  spec: { ...tx.spec, message: { ...tx.spec.message!, decision } },
});

const checkOutcome = (attempt: number, kind: CallOutcome['kind'], finishedAt: number, checkState?: CallOutcome['checkState']): CallOutcome => ({
  branch: SOURCE_BRANCH,
  method: 'CheckPrepared',
  attempt,
  kind,
  finishedAt,
  ...(checkState ? { checkState } : {}),
  ...(kind !== 'ok' ? { message: 'UNAVAILABLE: connect ECONNREFUSED' } : {}),
});

describe('Message: the upstream decides', () => {
  it('waits Prepared, then Commit → Delivering (persisted before any Deliver) → Delivered', () => {
    const tx = messageTx(['inventory', 'credit']);
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 + 5 });
    expect(s1.calls).toEqual([]);
    expect(s1.persistBeforeCalls).toBe(false);
    // checkAfter counts from the operator's first look (never before creation, at most 1 s after creationTimestamp).
    expect(s1.requeueAfterMs).toBe(10_000);
    expect(s1.status).toMatchObject({
      phase: 'Prepared',
      startTime: iso(T0 + 5),
      progress: '0/2',
      branches: [
        { name: 'inventory', state: 'Pending', attempts: 0 },
        { name: 'credit', state: 'Pending', attempts: 0 },
      ],
      conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Prepared' }],
    });
    expect(s1.status.decision).toBeUndefined();
    expect(s1.status.check).toBeUndefined();

    const committed = withDecision(tx, 'Commit');
    const s2 = stepMessage({ tx: committed, status: s1.status, outcomes: [], now: T0 + 300 });
    expect(s2.persistBeforeCalls).toBe(true);
    expect(s2.calls).toEqual([
      { branch: 'inventory', method: 'Deliver', attempt: 1 },
      { branch: 'credit', method: 'Deliver', attempt: 1 },
    ]);
    expect(s2.status).toMatchObject({
      phase: 'Delivering',
      decision: 'Deliver',
      decisionTime: iso(T0 + 300),
      observedGeneration: 2,
      message: 'spec.message.decision is Commit',
    });
    expect(s2.status.branches!.map((b) => b.state)).toEqual(['Delivering', 'Delivering']);
    expect(s2.events).toEqual([{ type: 'Normal', reason: 'Decided', message: 'Deliver: spec.message.decision is Commit' }]);

    const s3 = stepMessage({
      tx: committed,
      status: s2.status,
      outcomes: s2.calls.map((c) => outcome(c, 'ok', T0 + 320)),
      now: T0 + 320,
    });
    expect(s3.calls).toEqual([]);
    expect(s3.requeueAfterMs).toBeUndefined();
    expect(s3.status).toMatchObject({
      phase: 'Delivered',
      decision: 'Deliver',
      completionTime: iso(T0 + 320),
      progress: '2/2',
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Delivered' }],
    });
    expect(s3.status.branches!.map((b) => b.state)).toEqual(['Delivered', 'Delivered']);
    expect(s3.events.map((e) => e.reason)).toEqual(['Delivered']);
    // Terminal: nothing changes any more, even on a later step.
    const s4 = stepMessage({ tx: committed, status: s3.status, outcomes: [], now: T0 + 99_000 });
    expect(s4).toEqual({ status: s3.status, calls: [], persistBeforeCalls: false, events: [] });
  });

  it('a decision already in the spec at the first step is acted on at once', () => {
    const tx = withDecision(messageTx(['a']), 'Commit');
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s1.status.phase).toBe('Delivering');
    expect(s1.persistBeforeCalls).toBe(true);
    expect(s1.calls).toEqual([{ branch: 'a', method: 'Deliver', attempt: 1 }]);
  });

  it('Rollback → RolledBack at once, nothing delivered, no call', () => {
    const tx = messageTx(['inventory', 'credit']);
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 + 5 });
    const s2 = stepMessage({ tx: withDecision(tx, 'Rollback'), status: s1.status, outcomes: [], now: T0 + 100 });
    expect(s2.calls).toEqual([]);
    expect(s2.requeueAfterMs).toBeUndefined();
    expect(s2.status).toMatchObject({
      phase: 'RolledBack',
      decision: 'Rollback',
      completionTime: iso(T0 + 100),
      message: 'spec.message.decision is Rollback',
      progress: '0/2',
      conditions: [{ type: 'Succeeded', status: 'False', reason: 'RolledBack' }],
    });
    expect(s2.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'Decided'],
      ['Normal', 'RolledBack'],
    ]);
    // A Commit arriving after the rollback changes nothing.
    const s3 = stepMessage({ tx: withDecision(tx, 'Commit'), status: s2.status, outcomes: [], now: T0 + 200 });
    expect(s3.calls).toEqual([]);
    expect(s3.status).toEqual(s2.status);
  });
});

describe('Message: check-back', () => {
  const tx = messageTx(['inventory'], { checkAfter: '2s' }, { timeout: '10s' });
  const prepared = stepMessage({ tx, status: undefined, outcomes: [], now: T0 }).status;

  it('asks the source after checkAfter, without a write first; COMMITTED → Delivering', () => {
    const early = stepMessage({ tx, status: prepared, outcomes: [], now: T0 + 1_999 });
    expect(early.calls).toEqual([]);
    expect(early.requeueAfterMs).toBe(1);

    const s1 = stepMessage({ tx, status: prepared, outcomes: [], now: T0 + 2_000 });
    expect(s1.calls).toEqual([{ branch: '@source', method: 'CheckPrepared', attempt: 1 }]);
    expect(s1.persistBeforeCalls).toBe(false);
    expect(s1.status.check).toEqual({ attempts: 1, lastAttemptTime: iso(T0 + 2_000) });

    const s2 = stepMessage({ tx, status: s1.status, outcomes: [checkOutcome(1, 'ok', T0 + 2_010, 'COMMITTED')], now: T0 + 2_010 });
    expect(s2.persistBeforeCalls).toBe(true);
    expect(s2.calls).toEqual([{ branch: 'inventory', method: 'Deliver', attempt: 1 }]);
    expect(s2.status).toMatchObject({
      phase: 'Delivering',
      decision: 'Deliver',
      message: 'check-back: the source answered COMMITTED (attempt 1)',
      check: { attempts: 1, lastAnswer: 'COMMITTED' },
    });
  });

  it('ROLLED_BACK → RolledBack', () => {
    const s1 = stepMessage({ tx, status: prepared, outcomes: [], now: T0 + 2_000 });
    const s2 = stepMessage({ tx, status: s1.status, outcomes: [checkOutcome(1, 'ok', T0 + 2_010, 'ROLLED_BACK')], now: T0 + 2_010 });
    expect(s2.calls).toEqual([]);
    expect(s2.status).toMatchObject({ phase: 'RolledBack', decision: 'Rollback', check: { attempts: 1, lastAnswer: 'ROLLED_BACK' } });
  });

  it('UNKNOWN or a failed call asks again with backoff; the spec decision still wins meanwhile', () => {
    const policy = effectiveRetryPolicy(tx.spec);
    const d = (attempt: number) => retryDelayMs(policy, { uid: 'uid-1', branch: '@source', method: 'CheckPrepared', attempt });
    const s1 = stepMessage({ tx, status: prepared, outcomes: [], now: T0 + 2_000 });
    const s2 = stepMessage({ tx, status: s1.status, outcomes: [checkOutcome(1, 'ok', T0 + 2_010, 'UNKNOWN')], now: T0 + 2_010 });
    expect(s2.calls).toEqual([]);
    expect(s2.status.phase).toBe('Prepared');
    expect(s2.status.check).toEqual({ attempts: 1, lastAnswer: 'UNKNOWN', lastAttemptTime: iso(T0 + 2_000), nextAttemptTime: iso(T0 + 2_010 + d(1)) });
    expect(s2.requeueAfterMs).toBe(d(1));

    const s3 = stepMessage({ tx, status: s2.status, outcomes: [], now: T0 + 2_010 + d(1) });
    expect(s3.calls).toEqual([{ branch: '@source', method: 'CheckPrepared', attempt: 2 }]);
    const s4 = stepMessage({ tx, status: s3.status, outcomes: [checkOutcome(2, 'retryable', T0 + 2_020 + d(1))], now: T0 + 2_020 + d(1) });
    expect(s4.status.check).toMatchObject({ attempts: 2, lastAnswer: 'UNKNOWN', lastError: 'UNAVAILABLE: connect ECONNREFUSED' });
    expect(s4.events.map((e) => e.reason)).toEqual(['CheckFailed']);

    const s5 = stepMessage({ tx: withDecision(tx, 'Commit'), status: s4.status, outcomes: [], now: T0 + 2_030 + d(1) });
    expect(s5.status).toMatchObject({ phase: 'Delivering', decision: 'Deliver' });
    expect(s5.status.check!.nextAttemptTime).toBeUndefined();
  });

  it('a stale or foreign CheckPrepared answer is ignored', () => {
    const s1 = stepMessage({ tx, status: prepared, outcomes: [], now: T0 + 2_000 });
    const s2 = stepMessage({
      tx,
      status: s1.status,
      outcomes: [checkOutcome(7, 'ok', T0 + 2_010, 'COMMITTED'), { ...checkOutcome(1, 'ok', T0 + 2_010, 'COMMITTED'), branch: 'inventory' }],
      now: T0 + 2_010,
    });
    expect(s2.status.phase).toBe('Prepared');
  });

  it('no definite answer by creation + checkAfter + timeout → RolledBack (default), with a Warning', () => {
    const s1 = stepMessage({ tx, status: prepared, outcomes: [], now: T0 + 2_000 });
    const s2 = stepMessage({ tx, status: s1.status, outcomes: [checkOutcome(1, 'timeout', T0 + 7_000)], now: T0 + 7_000 });
    expect(s2.requeueAfterMs).toBeLessThanOrEqual(5_000);
    const s3 = stepMessage({ tx, status: s2.status, outcomes: [], now: T0 + 12_000 });
    expect(s3.calls).toEqual([]);
    expect(s3.status.phase).toBe('RolledBack');
    expect(s3.status.message).toMatch(/no decision and no definite check-back answer within checkAfter 2s \+ timeout 10s \(1 check, last: UNAVAILABLE: connect ECONNREFUSED\)/);
    expect(s3.events[0]).toMatchObject({ type: 'Warning', reason: 'Decided' });
  });

  it('onCheckTimeout=Fail → Failed without a decision; the upstream setting the decision later resumes it', () => {
    const strict = makeStepMessage({ onCheckTimeout: 'Fail' });
    const s1 = strict({ tx, status: prepared, outcomes: [], now: T0 + 12_000 });
    expect(s1.status.phase).toBe('Failed');
    expect(s1.status.decision).toBeUndefined();
    expect(s1.status.completionTime).toBeUndefined();
    expect(s1.status.message).toMatch(/set spec.message.decision to Commit or Rollback/);
    expect(s1.events.map((e) => e.reason)).toEqual(['CheckTimeout']);
    expect(strict({ tx, status: s1.status, outcomes: [], now: T0 + 13_000 })).toEqual({ status: s1.status, calls: [], persistBeforeCalls: false, events: [] });
    const s2 = strict({ tx: withDecision(tx, 'Commit'), status: s1.status, outcomes: [], now: T0 + 20_000 });
    expect(s2.status).toMatchObject({ phase: 'Delivering', decision: 'Deliver' });
    expect(s2.calls).toEqual([{ branch: 'inventory', method: 'Deliver', attempt: 1 }]);
  });

  it('makeStep carries the operator setting to Message only (--message-check-timeout-action)', () => {
    const input = { tx, status: prepared, outcomes: [], now: T0 + 12_000 };
    expect(makeStep({ message: { onCheckTimeout: 'Fail' } })(input).status.phase).toBe('Failed');
    expect(makeStep()(input).status.phase).toBe('RolledBack');
    expect(step(input).status.phase).toBe('RolledBack');
    const tcc = { tx: makeTx(['a']), status: undefined, outcomes: [], now: T0 };
    expect(makeStep({ message: { onCheckTimeout: 'Fail' } })(tcc)).toEqual(step(tcc));
  });
});

describe('Message: delivery', () => {
  const tx = withDecision(messageTx(['inventory', 'credit'], {}, { retry: { initialInterval: '1s', maxAttempts: 3 } }), 'Commit');

  it('retries a failed Deliver with backoff (each retry persisted first) until OK', () => {
    const policy = effectiveRetryPolicy(tx.spec, tx.spec.branches[1]);
    const d = (attempt: number) => retryDelayMs(policy, { uid: 'uid-1', branch: 'credit', method: 'Deliver', attempt });
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepMessage({
      tx,
      status: s1.status,
      outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 10), outcome(s1.calls[1]!, 'refused', T0 + 10, { message: 'ABORTED: no' })],
      now: T0 + 10,
    });
    expect(s2.calls).toEqual([]);
    expect(s2.status.phase).toBe('Delivering');
    expect(s2.status.branches![1]).toMatchObject({ state: 'Delivering', attempts: 1, lastError: 'ABORTED: no', nextAttemptTime: iso(T0 + 10 + d(1)) });
    expect(s2.requeueAfterMs).toBe(d(1));
    const s3 = stepMessage({ tx, status: s2.status, outcomes: [], now: T0 + 10 + d(1) });
    expect(s3.persistBeforeCalls).toBe(true);
    expect(s3.calls).toEqual([{ branch: 'credit', method: 'Deliver', attempt: 2 }]);
    const s4 = stepMessage({ tx, status: s3.status, outcomes: [outcome(s3.calls[0]!, 'ok', T0 + 20 + d(1))], now: T0 + 20 + d(1) });
    expect(s4.status.phase).toBe('Delivered');
  });

  it('maxAttempts failed Delivers → Failed (RetryBudgetExhausted), no completionTime', () => {
    let status: TransactionStatus | undefined;
    let now = T0;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const s = stepMessage({ tx, status, outcomes: [], now });
      const credit = s.calls.find((c) => c.branch === 'credit')!;
      expect(credit.attempt).toBe(attempt);
      const outs = s.calls.map((c) => outcome(c, c.branch === 'credit' ? 'retryable' : 'ok', now + 5));
      now += 5;
      const after = stepMessage({ tx, status: s.status, outcomes: outs, now });
      status = after.status;
      now += after.requeueAfterMs ?? 0;
    }
    expect(status!.phase).toBe('Failed');
    expect(status!.decision).toBe('Deliver');
    expect(status!.completionTime).toBeUndefined();
    expect(status!.message).toMatch(/branch credit: Deliver failed 3 times, retry budget spent/);
    expect(stepMessage({ tx, status, outcomes: [], now: now + 1e6 }).calls).toEqual([]);
  });

  it('an in-flight Deliver whose answer was lost is re-issued at once (write-ahead again)', () => {
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    const again = stepMessage({ tx, status: s1.status, outcomes: [], now: T0 + 1_000 });
    expect(again.calls).toEqual([
      { branch: 'inventory', method: 'Deliver', attempt: 2 },
      { branch: 'credit', method: 'Deliver', attempt: 2 },
    ]);
    expect(again.persistBeforeCalls).toBe(true);
  });
});

describe('Message: invalid specs and dispatch', () => {
  it('no spec.message → Failed (InvalidSpec) before any call', () => {
    const tx = makeTx(['a'], { mode: 'Message' });
    const s = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.status.phase).toBe('Failed');
    expect(s.status.message).toMatch(/spec.message: required/);
    expect(s.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(s.calls).toEqual([]);
  });

  it('bad checkAfter or a source without endpoint → Failed naming the field', () => {
    const tx = messageTx(['a'], { checkAfter: 'soon' });
    (tx.spec.message as { source: unknown }).source = {};
    const s = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.status.phase).toBe('Failed');
    expect(s.status.message).toMatch(/spec.message.checkAfter/);
    expect(s.status.message).toMatch(/spec.message.source.endpoint/);
  });

  it('step() dispatches mode Message', () => {
    const s = step({ tx: messageTx(['a']), status: undefined, outcomes: [], now: T0 });
    expect(s.status.phase).toBe('Prepared');
  });
});

describe('Message: kubetx.io/abort and kubetx.io/retry', () => {
  const annotate = (tx: DistributedTransaction, annotations: Record<string, string>): DistributedTransaction => ({
    ...tx,
    metadata: { ...tx.metadata, annotations },
  });

  it('abort before any decision → RolledBack ("aborted by user"), acknowledged in status', () => {
    const tx = messageTx(['a']);
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepMessage({ tx: annotate(tx, { 'kubetx.io/abort': 'wrong order' }), status: s1.status, outcomes: [], now: T0 + 10 });
    expect(s2.status).toMatchObject({ phase: 'RolledBack', decision: 'Rollback', message: 'aborted by user: wrong order', abortAcknowledged: 'wrong order' });
    expect(s2.events.map((e) => e.reason)).toEqual(['AbortRequested', 'Decided', 'RolledBack']);
    expect(s2.calls).toEqual([]);
  });

  it('abort is refused once the upstream has set the decision (its local transaction committed)', () => {
    const tx = annotate(withDecision(messageTx(['a']), 'Commit'), { 'kubetx.io/abort': 'too late' });
    const s = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.status).toMatchObject({ phase: 'Delivering', decision: 'Deliver', abortAcknowledged: 'too late' });
    expect(s.events.map((e) => e.reason)).toEqual(['Decided', 'AbortRefused']);
    expect(s.calls).toEqual([{ branch: 'a', method: 'Deliver', attempt: 1 }]);
    // Acknowledged once: the next step does not refuse again.
    const s2 = stepMessage({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'ok', T0 + 1)], now: T0 + 1 });
    expect(s2.events.map((e) => e.reason)).toEqual(['Delivered']);
    expect(s2.status.abortAcknowledged).toBe('too late');
  });

  it('retry resumes a Failed delivery with a fresh budget', () => {
    const tx = withDecision(messageTx(['a'], {}, { retry: { maxAttempts: 1 } }), 'Commit');
    const s1 = stepMessage({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepMessage({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 5)], now: T0 + 5 });
    const s3 = stepMessage({ tx, status: s2.status, outcomes: [], now: T0 + 60_000 });
    expect(s3.status.phase).toBe('Failed');
    const s4 = stepMessage({ tx: annotate(tx, { 'kubetx.io/retry': '1' }), status: s3.status, outcomes: [], now: T0 + 70_000 });
    expect(s4.status).toMatchObject({ phase: 'Delivering', decision: 'Deliver', retryAcknowledged: '1' });
    expect(s4.calls).toEqual([{ branch: 'a', method: 'Deliver', attempt: 1 }]);
    expect(s4.persistBeforeCalls).toBe(true);
  });
});

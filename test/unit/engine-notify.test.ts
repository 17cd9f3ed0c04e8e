import { describe, expect, it } from 'vitest';
import { notifyDelayMs, resolveNotify, step, stepNotify } from '../../src/engine/index.js';
import type { DistributedTransaction, NotifySpec, TransactionStatus } from '../../src/api/types.js';
import { T0, makeTx, outcome } from './engine-helpers.js';

const iso = (ms: number) => new Date(ms).toISOString();

function notifyTx(names: string[], notify?: NotifySpec): DistributedTransaction {
  const tx = makeTx(names, { mode: 'Notify' });
  if (notify) tx.spec.notify = notify;
  return tx;
}

describe('Notify', () => {
  it('calls every branch at once, persisted first; all OK → Delivered with two writes', () => {
    const tx = notifyTx(['merchant', 'crm']);
    const s1 = stepNotify({ tx, status: undefined, outcomes: [], now: T0 + 3 });
    expect(s1.persistBeforeCalls).toBe(true);
    expect(s1.calls).toEqual([
      { branch: 'merchant', method: 'Deliver', attempt: 1 },
      { branch: 'crm', method: 'Deliver', attempt: 1 },
    ]);
    expect(s1.status).toMatchObject({ phase: 'Notifying', startTime: iso(T0 + 3), progress: '0/2' });
    expect(s1.status.decision).toBeUndefined();
    const s2 = stepNotify({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0 + 9)), now: T0 + 9 });
    expect(s2.calls).toEqual([]);
    expect(s2.requeueAfterMs).toBeUndefined();
    expect(s2.status).toMatchObject({
      phase: 'Delivered',
      completionTime: iso(T0 + 9),
      progress: '2/2',
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Delivered' }],
    });
    expect(s2.events.map((e) => e.reason)).toEqual(['Delivered']);
  });

  it('follows the schedule after each failure, the last interval repeating', () => {
    const tx = notifyTx(['merchant'], { schedule: ['2s', '5s'] });
    let now = T0;
    let s = stepNotify({ tx, status: undefined, outcomes: [], now });
    const times: number[] = [now];
    for (let attempt = 1; attempt <= 4; attempt++) {
      const failedAt = now + 30;
      const after = stepNotify({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'retryable', failedAt, { message: 'UNAVAILABLE' })], now: failedAt });
      const expected = [2000, 5000, 5000, 5000][attempt - 1]!;
      expect(after.status.branches![0]!.nextAttemptTime).toBe(iso(failedAt + expected));
      expect(after.requeueAfterMs).toBe(expected);
      // Not before its time.
      expect(stepNotify({ tx, status: after.status, outcomes: [], now: failedAt + expected - 1 }).calls).toEqual([]);
      now = failedAt + expected;
      s = stepNotify({ tx, status: after.status, outcomes: [], now });
      expect(s.calls).toEqual([{ branch: 'merchant', method: 'Deliver', attempt: attempt + 1 }]);
      times.push(now);
    }
    const done = stepNotify({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'ok', now + 1)], now: now + 1 });
    expect(done.status.phase).toBe('Delivered');
    expect(done.status.branches![0]).toMatchObject({ state: 'Delivered', attempts: 5 });
    expect(done.status.branches![0]!.lastError).toBeUndefined();
  });

  it('a branch reaching maxAttempts is Exhausted; the others carry on; then phase Exhausted', () => {
    const tx = notifyTx(['merchant', 'crm'], { schedule: ['1s'], maxAttempts: 2 });
    const s1 = stepNotify({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepNotify({
      tx,
      status: s1.status,
      outcomes: s1.calls.map((c) => outcome(c, 'retryable', T0 + 5)),
      now: T0 + 5,
    });
    const s3 = stepNotify({ tx, status: s2.status, outcomes: [], now: T0 + 1_005 });
    expect(s3.calls.map((c) => c.attempt)).toEqual([2, 2]);
    const s4 = stepNotify({
      tx,
      status: s3.status,
      outcomes: [outcome(s3.calls[0]!, 'timeout', T0 + 1_010), outcome(s3.calls[1]!, 'ok', T0 + 1_010)],
      now: T0 + 1_010,
    });
    expect(s4.calls).toEqual([]);
    expect(s4.status.phase).toBe('Exhausted');
    expect(s4.status.branches!.map((b) => b.state)).toEqual(['Exhausted', 'Delivered']);
    expect(s4.status.message).toBe('not delivered to merchant after 2 attempts each; delivered to 1 of 2');
    expect(s4.status.completionTime).toBe(iso(T0 + 1_010));
    expect(s4.status.conditions![0]).toMatchObject({ status: 'False', reason: 'Exhausted' });
    expect(s4.events.map((e) => e.reason)).toEqual(['NotifyExhausted', 'Exhausted']);
    expect(stepNotify({ tx, status: s4.status, outcomes: [], now: T0 + 1e7 }).calls).toEqual([]);
  });

  it('an answer lost to a restart counts as a failed attempt, scheduled from when it was made', () => {
    const tx = notifyTx(['merchant'], { schedule: ['5s'] });
    const s1 = stepNotify({ tx, status: undefined, outcomes: [], now: T0 });
    const early = stepNotify({ tx, status: s1.status, outcomes: [], now: T0 + 2_000 });
    expect(early.calls).toEqual([]);
    expect(early.status.branches![0]).toMatchObject({ attempts: 1, nextAttemptTime: iso(T0 + 5_000), lastError: 'no answer to attempt 1 (the operator restarted?)' });
    expect(early.requeueAfterMs).toBe(3_000);
    const late = stepNotify({ tx, status: s1.status, outcomes: [], now: T0 + 6_000 });
    expect(late.calls).toEqual([{ branch: 'merchant', method: 'Deliver', attempt: 2 }]);
  });

  it('defaults: 1s, 5s, 15s, 30s, 1m, 5m, 15m, 30m, 1h (repeating), 50 attempts', () => {
    const r = resolveNotify(undefined);
    expect(r.maxAttempts).toBe(50);
    expect(r.errors).toEqual([]);
    expect([1, 2, 3, 9, 10, 49].map((n) => notifyDelayMs(r.scheduleMs, n))).toEqual([1_000, 5_000, 15_000, 3_600_000, 3_600_000, 3_600_000]);
    expect(notifyDelayMs([0], 1)).toBe(1_000);
  });

  it('an invalid schedule or cap → Failed before any call', () => {
    const tx = notifyTx(['merchant'], { schedule: ['1s', 'later'], maxAttempts: -1 });
    const s = stepNotify({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.calls).toEqual([]);
    expect(s.status.phase).toBe('Failed');
    expect(s.status.message).toMatch(/spec.notify.schedule\[1\]/);
    expect(s.status.message).toMatch(/spec.notify.maxAttempts/);
    expect(s.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
  });

  it('step() dispatches mode Notify; ignores stale outcomes', () => {
    const tx = notifyTx(['merchant']);
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = step({
      tx,
      status: s1.status,
      outcomes: [{ branch: 'merchant', method: 'Deliver', attempt: 9, kind: 'ok', finishedAt: T0 }, { branch: 'merchant', method: 'Try', attempt: 1, kind: 'ok', finishedAt: T0 }],
      now: T0 + 1,
    });
    const status: TransactionStatus = s2.status;
    expect(status.phase).toBe('Notifying');
    expect(status.branches![0]!.state).toBe('Delivering');
  });
});

describe('Notify: kubetx.io/abort and kubetx.io/retry', () => {
  it('abort is refused (nothing to roll back); notifying goes on', () => {
    const tx = notifyTx(['merchant']);
    tx.metadata.annotations = { 'kubetx.io/abort': 'stop it' };
    const s = stepNotify({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.events.map((e) => e.reason)).toEqual(['AbortRefused']);
    expect(s.status).toMatchObject({ phase: 'Notifying', abortAcknowledged: 'stop it' });
    expect(s.calls).toHaveLength(1);
  });

  it('retry makes a branch waiting for its next slot due now, with a fresh budget', () => {
    const tx = notifyTx(['merchant'], { schedule: ['1h'], maxAttempts: 3 });
    const s1 = stepNotify({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepNotify({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 5)], now: T0 + 5 });
    expect(s2.requeueAfterMs).toBe(3_600_000);
    const retried = { ...tx, metadata: { ...tx.metadata, annotations: { 'kubetx.io/retry': 'now' } } };
    const s3 = stepNotify({ tx: retried, status: s2.status, outcomes: [], now: T0 + 10 });
    expect(s3.calls).toEqual([{ branch: 'merchant', method: 'Deliver', attempt: 1 }]);
    expect(s3.persistBeforeCalls).toBe(true);
    expect(s3.status.retryAcknowledged).toBe('now');
  });
});

/**
 * The engine floors the spec's durations at the CRD's minimums, so an object
 * stored before the CEL rules existed (or written past them) cannot abort at
 * once, cancel every call, or make the controller call and write status in a
 * tight loop.
 */
import { describe, expect, it } from 'vitest';
import { MIN_CALL_TIMEOUT_MS, MIN_CHECK_AFTER_MS, MIN_NOTIFY_DELAY_MS, MIN_TIMEOUT_MS, resolveConfig, stepMessage, stepNotify, stepTcc } from '../../src/engine/index.js';
import { T0, makeTx, outcome } from './engine-helpers.js';

describe('engine duration floors', () => {
  it('timeout 0.4ms and callTimeout 100us are floored to 1s and 10ms', () => {
    const tx = makeTx(['a'], { timeout: '0.4ms' });
    tx.spec.branches[0]!.callTimeout = '100us';
    const cfg = resolveConfig(tx);
    expect(cfg.errors).toEqual([]);
    expect(cfg.timeoutMs).toBe(MIN_TIMEOUT_MS);
    expect(MIN_TIMEOUT_MS).toBe(1_000);
    expect(cfg.branches[0]!.callTimeoutMs).toBe(MIN_CALL_TIMEOUT_MS);
    expect(MIN_CALL_TIMEOUT_MS).toBe(10);
    // Before: the transaction aborted on its first step after creation; now Try is made.
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 + 5 });
    expect(s1.status.phase).toBe('Trying');
    expect(s1.calls.map((c) => c.method)).toEqual(['Try']);
    const s2 = stepTcc({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'retryable', T0 + 6)), now: T0 + 6 });
    expect(s2.status.decision).toBeUndefined();
  });

  it('a 1ns notify schedule step waits 1s between attempts', () => {
    const tx = makeTx(['merchant'], { mode: 'Notify' });
    tx.spec.notify = { schedule: ['1ns'] };
    const s1 = stepNotify({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepNotify({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 1)], now: T0 + 1 });
    expect(MIN_NOTIFY_DELAY_MS).toBe(1_000);
    expect(s2.requeueAfterMs).toBe(1_000);
    expect(s2.status.branches![0]!.nextAttemptTime).toBe(new Date(T0 + 1 + 1_000).toISOString());
  });

  it('a 1ns retry initialInterval waits at least 100ms', () => {
    const tx = makeTx(['a'], { retry: { initialInterval: '1ns', maxInterval: '1ns' } });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'retryable', T0 + 1)), now: T0 + 1 });
    expect(s2.requeueAfterMs).toBeGreaterThanOrEqual(100);
  });

  it('a 1ns message checkAfter asks the source after 1s, not at once', () => {
    const tx = makeTx(['inventory'], { mode: 'Message' });
    tx.spec.message = { source: { endpoint: { service: { name: 'order', port: 50051 } }, operation: 'createOrder' }, checkAfter: '1ns' };
    const early = stepMessage({ tx, status: undefined, outcomes: [], now: T0 + 5 });
    expect(early.calls).toEqual([]);
    expect(early.requeueAfterMs).toBe(MIN_CHECK_AFTER_MS);
    const notYet = stepMessage({ tx, status: early.status, outcomes: [], now: T0 + 5 + MIN_CHECK_AFTER_MS - 1 });
    expect(notYet.calls).toEqual([]);
    const due = stepMessage({ tx, status: early.status, outcomes: [], now: T0 + 5 + MIN_CHECK_AFTER_MS });
    expect(due.calls.map((c) => c.method)).toEqual(['CheckPrepared']);
  });
});

import { describe, expect, it } from 'vitest';
import { RETRY_ANNOTATION, getCondition, step, stepTcc } from '../../src/engine/index.js';
import type { DistributedTransaction, TransactionStatus } from '../../src/api/types.js';
import { T0, makeTx, outcome } from './engine-helpers.js';

/** A TCC transaction whose spec throws when the engine reads its branches (stands in for any engine bug). */
function throwingTx(base: DistributedTransaction = makeTx(['a', 'b'])): DistributedTransaction {
  const spec = { ...base.spec };
  Object.defineProperty(spec, 'branches', {
    enumerable: true,
    get() {
      throw new Error('boom: branches unreadable');
    },
  });
  return { ...base, spec };
}

/** The status of a TCC transaction that decided Confirm (both Trys answered ok). */
function decidedStatus(): TransactionStatus {
  const tx = makeTx(['a', 'b']);
  const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
  const s2 = stepTcc({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0)), now: T0 });
  expect(s2.status.decision).toBe('Confirm');
  return s2.status;
}

describe('engine exception', () => {
  it('ends the transaction Failed with condition Succeeded=False reason EngineError, one Event, decision kept', () => {
    const prev = decidedStatus();
    const out = step({ tx: throwingTx(), status: prev, outcomes: [], now: T0 + 1000 });
    expect(out.status.phase).toBe('Failed');
    expect(out.status.decision).toBe('Confirm');
    expect(out.status.decisionTime).toBe(prev.decisionTime);
    expect(out.status.message).toContain('boom: branches unreadable');
    const cond = getCondition(out.status.conditions, 'Succeeded');
    expect(cond).toMatchObject({ status: 'False', reason: 'EngineError' });
    expect(cond?.message).toContain('boom: branches unreadable');
    expect(out.calls).toEqual([]);
    expect(out.requeueAfterMs).toBeUndefined();
    expect(out.events.map((e) => e.reason)).toEqual(['EngineError']);

    // Stepping the Failed status again (the same bug) changes nothing and emits no second Event.
    const again = step({ tx: throwingTx(), status: out.status, outcomes: [], now: T0 + 120_000 });
    expect(again.status).toEqual(out.status);
    expect(again.events).toEqual([]);
    expect(again.requeueAfterMs).toBeUndefined();
  });

  it('truncates a huge error text', () => {
    const tx = makeTx(['a']);
    const spec = { ...tx.spec };
    Object.defineProperty(spec, 'branches', { enumerable: true, get: () => { throw new Error('x'.repeat(100_000)); } });
    const out = step({ tx: { ...tx, spec }, status: undefined, outcomes: [], now: T0 });
    expect(out.status.phase).toBe('Failed');
    expect(out.status.message!.length).toBeLessThan(2048);
  });

  it('a Failed transaction with a decision resumes on kubetx.io/retry once the cause is gone', () => {
    const failed = step({ tx: throwingTx(), status: decidedStatus(), outcomes: [], now: T0 + 1000 }).status;
    const tx = makeTx(['a', 'b']);
    tx.metadata.annotations = { [RETRY_ANNOTATION]: '1' };
    const out = step({ tx, status: failed, outcomes: [], now: T0 + 2000 });
    expect(out.status.phase).toBe('Confirming');
    expect(out.calls.map((c) => c.method)).toEqual(['Confirm', 'Confirm']);
  });
});

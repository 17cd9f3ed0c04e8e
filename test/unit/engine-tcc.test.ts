import { describe, expect, it } from 'vitest';
import { step, stepTcc } from '../../src/engine/index.js';
import { retryDelayMs, effectiveRetryPolicy } from '../../src/engine/backoff.js';
import type { TransactionStatus } from '../../src/api/types.js';
import type { StepOutput } from '../../src/engine/types.js';
import { T0, makeTx, outcome } from './engine-helpers.js';

const iso = (ms: number) => new Date(ms).toISOString();
const delay = (branch: string, method: string, attempt: number, uid = 'uid-1') =>
  retryDelayMs(effectiveRetryPolicy({}), { uid, branch, method, attempt });

describe('TCC happy path', () => {
  it('commits in three steps with two status writes: the decision, then the outcome', () => {
    const tx = makeTx(['inventory', 'credit']);
    const writes: TransactionStatus[] = [];

    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 + 10 });
    expect(s1.persistBeforeCalls).toBe(false);
    expect(s1.calls).toEqual([
      { branch: 'inventory', method: 'Try', attempt: 1 },
      { branch: 'credit', method: 'Try', attempt: 1 },
    ]);
    expect(s1.status).toMatchObject({
      phase: 'Trying',
      // The operator's first look, not the truncated creationTimestamp (and never more than 1 s after it).
      startTime: iso(T0 + 10),
      observedGeneration: 1,
      progress: '0/2',
      conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Trying' }],
    });
    expect(s1.status.branches).toEqual([
      { name: 'inventory', state: 'Trying', attempts: 1, lastAttemptTime: iso(T0 + 10) },
      { name: 'credit', state: 'Trying', attempts: 1, lastAttemptTime: iso(T0 + 10) },
    ]);
    expect(s1.requeueAfterMs).toBe(30_000);

    const s2 = stepTcc({
      tx,
      status: s1.status,
      outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 50, { data: 'cmVzLTE=' }), outcome(s1.calls[1]!, 'ok', T0 + 60)],
      now: T0 + 60,
    });
    expect(s2.persistBeforeCalls).toBe(true);
    writes.push(s2.status);
    expect(s2.calls).toEqual([
      { branch: 'inventory', method: 'Confirm', attempt: 1, result: 'cmVzLTE=' },
      { branch: 'credit', method: 'Confirm', attempt: 1 },
    ]);
    expect(s2.status).toMatchObject({
      phase: 'Confirming',
      decision: 'Confirm',
      decisionTime: iso(T0 + 60),
      progress: '0/2',
      conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Confirming', lastTransitionTime: iso(T0 + 10) }],
    });
    expect(s2.status.branches![0]).toMatchObject({ state: 'Confirming', attempts: 1, result: 'cmVzLTE=' });
    expect(s2.events).toEqual([{ type: 'Normal', reason: 'Decided', message: 'Confirm: all 2 branches prepared' }]);

    const s3 = stepTcc({
      tx,
      status: s2.status,
      outcomes: s2.calls.map((c) => outcome(c, 'ok', T0 + 80)),
      now: T0 + 80,
    });
    expect(s3.calls).toEqual([]);
    expect(s3.persistBeforeCalls).toBe(false);
    expect(s3.requeueAfterMs).toBeUndefined();
    writes.push(s3.status); // the controller's end-of-loop write
    expect(s3.status).toMatchObject({
      phase: 'Committed',
      decision: 'Confirm',
      completionTime: iso(T0 + 80),
      progress: '2/2',
      message: 'all 2 branches confirmed',
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Committed', lastTransitionTime: iso(T0 + 80) }],
    });
    expect(s3.status.branches!.map((b) => [b.state, b.attempts])).toEqual([
      ['Confirmed', 1],
      ['Confirmed', 1],
    ]);
    expect(s3.events.map((e) => e.reason)).toEqual(['Committed']);
    expect(writes).toHaveLength(2);

    // Terminal: further steps change nothing.
    const s4 = stepTcc({ tx, status: s3.status, outcomes: [], now: T0 + 99_999 });
    expect(s4).toEqual({ status: s3.status, calls: [], persistBeforeCalls: false, events: [] });
  });

  it('does not modify its input', () => {
    const tx = makeTx(['a']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const frozen = structuredClone(s1.status);
    const txCopy = structuredClone(tx);
    stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0)], now: T0 });
    expect(s1.status).toEqual(frozen);
    expect(tx).toEqual(txCopy);
  });
});

describe('TCC cancel', () => {
  it('a refused Try cancels every branch, including the refused one and one still Trying', () => {
    const tx = makeTx(['inventory', 'credit', 'shipping']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const [inv, credit, ship] = s1.calls;
    const s2 = stepTcc({
      tx,
      status: s1.status,
      outcomes: [
        outcome(inv!, 'ok', T0 + 5, { data: 'aW52' }),
        outcome(credit!, 'refused', T0 + 6, { message: 'insufficient quota' }),
        outcome(ship!, 'retryable', T0 + 7, { message: 'UNAVAILABLE: connect ECONNREFUSED' }),
      ],
      now: T0 + 7,
    });
    expect(s2.status).toMatchObject({
      phase: 'Cancelling',
      decision: 'Cancel',
      message: 'branch credit: Try refused: insufficient quota',
      progress: '0/3',
    });
    expect(s2.persistBeforeCalls).toBe(true);
    expect(s2.calls).toEqual([
      { branch: 'inventory', method: 'Cancel', attempt: 1, result: 'aW52' },
      { branch: 'credit', method: 'Cancel', attempt: 1 },
      { branch: 'shipping', method: 'Cancel', attempt: 1 },
    ]);
    expect(s2.status.branches!.map((b) => b.state)).toEqual(['Cancelling', 'Cancelling', 'Cancelling']);
    expect(s2.events).toEqual([
      { type: 'Warning', reason: 'CallFailed', message: 'branch credit: Try refused: insufficient quota', branch: 'credit', method: 'Try' },
      { type: 'Warning', reason: 'CallFailed', message: 'branch shipping: Try failed: UNAVAILABLE: connect ECONNREFUSED', branch: 'shipping', method: 'Try' },
      { type: 'Warning', reason: 'Decided', message: 'Cancel: branch credit: Try refused: insufficient quota' },
    ]);

    const s3 = stepTcc({ tx, status: s2.status, outcomes: s2.calls.map((c) => outcome(c, 'ok', T0 + 9)), now: T0 + 9 });
    expect(s3.status).toMatchObject({
      phase: 'Aborted',
      progress: '3/3',
      message: 'branch credit: Try refused: insufficient quota',
      completionTime: iso(T0 + 9),
      conditions: [{ type: 'Succeeded', status: 'False', reason: 'Aborted' }],
    });
    expect(s3.events.map((e) => e.reason)).toEqual(['Aborted']);
  });

  it('timeout while a Try keeps failing cancels everywhere; retryable failures alone never do', () => {
    const tx = makeTx(['inventory', 'credit'], { timeout: '10s' });
    let s: StepOutput = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    s = stepTcc({
      tx,
      status: s.status,
      outcomes: [outcome(s.calls[0]!, 'timeout', T0 + 5000), outcome(s.calls[1]!, 'ok', T0 + 100)],
      now: T0 + 5000,
    });
    let now = T0 + 5000;
    // Keep failing inventory's Try until the deadline: the phase stays Trying.
    while (s.status.phase === 'Trying') {
      expect(s.status.decision).toBeUndefined();
      now += s.requeueAfterMs!;
      s = stepTcc({ tx, status: s.status, outcomes: [], now });
      if (s.status.phase === 'Trying' && s.calls.length > 0) {
        expect(s.calls).toEqual([{ branch: 'inventory', method: 'Try', attempt: s.calls[0]!.attempt }]);
        s = stepTcc({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'retryable', now + 1, { message: 'boom' })], now: now + 1 });
        now += 1;
      }
    }
    expect(s.status).toMatchObject({
      phase: 'Cancelling',
      decision: 'Cancel',
      message: 'timeout 10s passed before every Try succeeded (waiting on: inventory)',
      decisionTime: iso(T0 + 10_000),
    });
    expect(s.calls.map((c) => [c.branch, c.method, c.attempt])).toEqual([
      ['inventory', 'Cancel', 1],
      ['credit', 'Cancel', 1],
    ]);
    expect(s.persistBeforeCalls).toBe(true);
  });

  it('timeout with a Try that never answered (controller crashed, status absent) cancels that branch too', () => {
    const tx = makeTx(['a', 'b']);
    const s = stepTcc({ tx, status: undefined, outcomes: [], now: T0 + 31_000 });
    expect(s.status).toMatchObject({ phase: 'Cancelling', message: 'timeout 30s passed before every Try succeeded (waiting on: a, b)' });
    expect(s.calls.map((c) => `${c.branch}:${c.method}`)).toEqual(['a:Cancel', 'b:Cancel']);
    expect(s.status.branches!.map((b) => b.state)).toEqual(['Cancelling', 'Cancelling']);
  });

  it('Try outcomes that all succeed are confirmed even if the step runs just after the deadline', () => {
    const tx = makeTx(['a'], { timeout: '1s' });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 + 900 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 999)], now: T0 + 1200 });
    expect(s2.status.decision).toBe('Confirm');
  });
});

describe('TCC retries', () => {
  it('a retryable Try is retried after its backoff, then confirmed', () => {
    const tx = makeTx(['a', 'b']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({
      tx,
      status: s1.status,
      outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 20, { message: 'UNAVAILABLE' }), outcome(s1.calls[1]!, 'ok', T0 + 20)],
      now: T0 + 25,
    });
    const d = delay('a', 'Try', 1);
    expect(d).toBeGreaterThanOrEqual(500);
    expect(d).toBeLessThanOrEqual(1000);
    expect(s2.calls).toEqual([]);
    expect(s2.status.phase).toBe('Trying');
    expect(s2.status.progress).toBe('1/2');
    expect(s2.status.branches![0]).toEqual({
      name: 'a',
      state: 'Trying',
      attempts: 1,
      lastError: 'UNAVAILABLE',
      lastAttemptTime: iso(T0),
      nextAttemptTime: iso(T0 + 20 + d),
    });
    expect(s2.requeueAfterMs).toBe(T0 + 20 + d - (T0 + 25));

    // Woken early: nothing is due yet.
    const early = stepTcc({ tx, status: s2.status, outcomes: [], now: T0 + 20 + d - 1 });
    expect(early.calls).toEqual([]);
    expect(early.status).toEqual(s2.status);

    const s3 = stepTcc({ tx, status: s2.status, outcomes: [], now: T0 + 20 + d });
    expect(s3.calls).toEqual([{ branch: 'a', method: 'Try', attempt: 2 }]);
    expect(s3.persistBeforeCalls).toBe(false);
    const s4 = stepTcc({ tx, status: s3.status, outcomes: [outcome(s3.calls[0]!, 'ok', T0 + 2000)], now: T0 + 2000 });
    expect(s4.status.phase).toBe('Confirming');
    expect(s4.calls.map((c) => c.branch)).toEqual(['a', 'b']);
    expect(s4.status.branches!.every((b) => b.attempts === 1 && b.lastError === undefined)).toBe(true);
  });

  it('Confirm failing 3 times then succeeding: attempts = 4, every retry written first, decision unchanged', () => {
    const tx = makeTx(['a']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    let s = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 1)], now: T0 + 1 });
    let now = T0 + 1;
    const failures: string[] = [];
    for (let i = 1; i <= 3; i++) {
      expect(s.calls).toEqual([{ branch: 'a', method: 'Confirm', attempt: i }]);
      expect(s.persistBeforeCalls).toBe(true);
      // A refused Confirm is a failure to retry, not a business "no".
      const kind = (['retryable', 'timeout', 'refused'] as const)[i - 1]!;
      now += 10;
      s = stepTcc({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, kind, now, { message: `err ${i}` })], now });
      failures.push(...s.events.map((e) => `${e.reason}: ${e.message}`));
      expect(s.calls).toEqual([]);
      expect(s.status.decision).toBe('Confirm');
      expect(s.status.branches![0]).toMatchObject({ state: 'Confirming', attempts: i, lastError: `err ${i}`, nextAttemptTime: iso(now + delay('a', 'Confirm', i)) });
      expect(s.requeueAfterMs).toBe(delay('a', 'Confirm', i));
      now += s.requeueAfterMs!;
      s = stepTcc({ tx, status: s.status, outcomes: [], now });
    }
    expect(failures).toEqual([
      'CallFailed: branch a: Confirm failed: err 1',
      'CallFailed: branch a: Confirm failed: err 2',
      'CallFailed: branch a: Confirm failed: err 3',
    ]);
    expect(s.calls).toEqual([{ branch: 'a', method: 'Confirm', attempt: 4 }]);
    s = stepTcc({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'ok', now)], now });
    expect(s.status.phase).toBe('Committed');
    expect(s.status.branches![0]).toMatchObject({ state: 'Confirmed', attempts: 4 });
    // The success clears the failure: a Confirmed branch shows no error.
    expect(s.status.branches![0]!.lastError).toBeUndefined();
    expect(s.status.branches![0]!.nextAttemptTime).toBeUndefined();
  });

  it('maxAttempts reached with a failure → Failed, no further calls, decision kept', () => {
    const tx = makeTx(['a', 'b'], { retry: { maxAttempts: 2 } });
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    let s = stepTcc({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0)), now: T0 });
    s = stepTcc({
      tx,
      status: s.status,
      outcomes: [outcome(s.calls[0]!, 'ok', T0 + 1), outcome(s.calls[1]!, 'retryable', T0 + 1, { message: 'down' })],
      now: T0 + 1,
    });
    expect(s.status.phase).toBe('Confirming');
    s = stepTcc({ tx, status: s.status, outcomes: [], now: T0 + 1 + s.requeueAfterMs! });
    expect(s.calls).toEqual([{ branch: 'b', method: 'Confirm', attempt: 2 }]);
    const now = T0 + 5000;
    s = stepTcc({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'retryable', now, { message: 'still down' })], now });
    expect(s.calls).toEqual([]);
    expect(s.requeueAfterMs).toBeUndefined();
    expect(s.status).toMatchObject({
      phase: 'Failed',
      decision: 'Confirm',
      message: 'branch b: Confirm failed 2 times, retry budget spent: still down',
      progress: '1/2',
      conditions: [{ type: 'Succeeded', status: 'False', reason: 'Failed' }],
    });
    expect(s.status.completionTime).toBeUndefined();
    expect(s.events.map((e) => [e.type, e.reason])).toEqual([
      ['Warning', 'CallFailed'],
      ['Warning', 'RetryBudgetExhausted'],
    ]);
    const again = stepTcc({ tx, status: s.status, outcomes: [], now: now + 3_600_000 });
    expect(again.calls).toEqual([]);
    expect(again.status).toEqual(s.status);
  });

  it('maxAttempts does not limit Try: only the forward timeout ends it', () => {
    const tx = makeTx(['a'], { retry: { maxAttempts: 1, initialInterval: '100ms', multiplier: 1 } });
    let s = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    let now = T0;
    for (let i = 0; i < 5; i++) {
      now += 100;
      s = stepTcc({ tx, status: s.status, outcomes: [outcome(s.calls[0]!, 'retryable', now)], now });
      now += s.requeueAfterMs!;
      s = stepTcc({ tx, status: s.status, outcomes: [], now });
      expect(s.calls).toEqual([{ branch: 'a', method: 'Try', attempt: i + 2 }]);
    }
    expect(s.status.phase).toBe('Trying');
  });
});

describe('TCC resume after a crash', () => {
  const tx = makeTx(['a', 'b', 'c']);
  const persisted: TransactionStatus = {
    phase: 'Confirming',
    decision: 'Confirm',
    observedGeneration: 1,
    startTime: iso(T0),
    decisionTime: iso(T0 + 100),
    message: 'all 3 branches prepared',
    branches: [
      { name: 'a', state: 'Confirmed', attempts: 1, lastAttemptTime: iso(T0 + 100) },
      { name: 'b', state: 'Prepared', attempts: 2, lastError: 'x', nextAttemptTime: iso(T0 + 3000), result: 'Yg==' },
      { name: 'c', state: 'Prepared', attempts: 3, lastError: 'y', nextAttemptTime: iso(T0 + 9000) },
    ],
  };

  it('re-issues Confirm only for branches that are due, and requeues for the rest', () => {
    const s = stepTcc({ tx, status: persisted, outcomes: [], now: T0 + 5000 });
    expect(s.calls).toEqual([{ branch: 'b', method: 'Confirm', attempt: 3, result: 'Yg==' }]);
    expect(s.persistBeforeCalls).toBe(true);
    expect(s.requeueAfterMs).toBe(4000);
    expect(s.status.progress).toBe('1/3');
  });

  it('a call whose answer was lost (no nextAttemptTime) is re-issued at once with the next attempt number', () => {
    const inFlight: TransactionStatus = {
      ...persisted,
      branches: [
        { name: 'a', state: 'Prepared', attempts: 1, lastAttemptTime: iso(T0 + 100) },
        { name: 'b', state: 'Confirmed', attempts: 1 },
        { name: 'c', state: 'Prepared', attempts: 1 },
      ],
    };
    const s = stepTcc({ tx, status: inFlight, outcomes: [], now: T0 + 200 });
    expect(s.calls.map((c) => [c.branch, c.attempt])).toEqual([
      ['a', 2],
      ['c', 2],
    ]);
  });

  it('phase Trying: re-issues Try for every branch not Prepared that is due', () => {
    const trying: TransactionStatus = {
      phase: 'Trying',
      startTime: iso(T0),
      branches: [
        { name: 'a', state: 'Prepared', attempts: 1, result: 'YQ==' },
        { name: 'b', state: 'Trying', attempts: 1 },
        { name: 'c', state: 'Trying', attempts: 2, nextAttemptTime: iso(T0 + 8000) },
      ],
    };
    const s = stepTcc({ tx, status: trying, outcomes: [], now: T0 + 2000 });
    expect(s.calls).toEqual([{ branch: 'b', method: 'Try', attempt: 2 }]);
    expect(s.persistBeforeCalls).toBe(false);
    expect(s.requeueAfterMs).toBe(6000);
  });

  it('a step with nothing due returns the same status (no spurious writes)', () => {
    const s1 = stepTcc({ tx, status: persisted, outcomes: [], now: T0 + 1000 });
    expect(s1.calls).toEqual([]);
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [], now: T0 + 2000 });
    expect(s2.status).toEqual(s1.status);
  });

  it('maxAttempts reached by a call whose answer was lost → Failed rather than one call too many', () => {
    const limited = makeTx(['a', 'b', 'c'], { retry: { maxAttempts: 3 } });
    const s = stepTcc({ tx: limited, status: { ...persisted, branches: [...persisted.branches!.slice(0, 2), { name: 'c', state: 'Prepared', attempts: 3 }] }, outcomes: [], now: T0 + 5000 });
    expect(s.calls).toEqual([]);
    expect(s.status.phase).toBe('Failed');
    expect(s.status.message).toBe('branch c: Confirm failed 3 times, retry budget spent: no answer to the last attempt');
  });
});

describe('TCC robustness', () => {
  it('ignores stale outcomes: older or future attempt, wrong method, unknown branch, answered attempts, duplicates', () => {
    const tx = makeTx(['a', 'b']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    // b's answer is missing: treated as lost, b's Try is re-issued at once.
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 1)], now: T0 + 1 });
    expect(s2.calls).toEqual([{ branch: 'b', method: 'Try', attempt: 2 }]);
    const s2b = stepTcc({ tx, status: s2.status, outcomes: [outcome(s2.calls[0]!, 'ok', T0 + 2)], now: T0 + 2 });
    const a2 = stepTcc({ tx, status: s2b.status, outcomes: [], now: T0 + 1 + s2.requeueAfterMs! });
    expect(a2.calls).toEqual([{ branch: 'a', method: 'Try', attempt: 2 }]);
    const s3 = stepTcc({
      tx,
      status: a2.status,
      outcomes: [
        { branch: 'a', method: 'Try', attempt: 1, kind: 'refused', finishedAt: T0 + 2 }, // older attempt
        { branch: 'a', method: 'Confirm', attempt: 2, kind: 'ok', finishedAt: T0 + 2 }, // wrong method
        { branch: 'zzz', method: 'Try', attempt: 2, kind: 'refused', finishedAt: T0 + 2 }, // unknown branch
        { branch: 'a', method: 'Try', attempt: 3, kind: 'refused', finishedAt: T0 + 2 }, // future attempt
        { branch: 'b', method: 'Try', attempt: 2, kind: 'refused', finishedAt: T0 + 2 }, // already answered
      ],
      now: T0 + 1500,
    });
    expect(s3.status.phase).toBe('Trying');
    expect(s3.status.branches!.map((b) => b.state)).toEqual(['Trying', 'Prepared']);
    expect(s3.events).toEqual([]);
    // No answer to a's attempt 2 came with them: it counts as lost and is re-issued.
    expect(s3.calls).toEqual([{ branch: 'a', method: 'Try', attempt: 3 }]);
    const s4 = stepTcc({
      tx,
      status: s3.status,
      outcomes: [outcome(s3.calls[0]!, 'ok', T0 + 1600), outcome(s3.calls[0]!, 'refused', T0 + 1600)], // the first of duplicates wins
      now: T0 + 1600,
    });
    expect(s4.status.decision).toBe('Confirm');
  });

  it('a decision never changes, whatever arrives', () => {
    const tx = makeTx(['a', 'b']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0)), now: T0 });
    const late = stepTcc({
      tx,
      status: s2.status,
      outcomes: [
        { branch: 'a', method: 'Try', attempt: 1, kind: 'refused', finishedAt: T0 + 1 },
        { branch: 'b', method: 'Try', attempt: 1, kind: 'ok', finishedAt: T0 + 1 },
        { branch: 'b', method: 'Cancel', attempt: 1, kind: 'ok', finishedAt: T0 + 1 },
      ],
      now: T0 + 40_000, // past the forward timeout too
    });
    expect(late.status.decision).toBe('Confirm');
    expect(late.status.phase).toBe('Confirming');
    expect(late.events).toEqual([]);
    expect(late.status.branches).toEqual(s2.status.branches!.map((b) => ({ ...b, attempts: 2, lastAttemptTime: iso(T0 + 40_000) })));
    expect(late.calls.every((c) => c.method === 'Confirm')).toBe(true);
  });

  it('rebuilds the branch list from the spec (missing → Pending, unknown dropped, junk ignored)', () => {
    const tx = makeTx(['a', 'b']);
    const status = {
      phase: 'Trying',
      startTime: iso(T0),
      branches: [null, { name: 'zzz', state: 'Prepared', attempts: 1 }, { name: 'b', state: 'Bogus', attempts: -3, nextAttemptTime: 'never' }],
      conditions: 'nope',
    } as unknown as TransactionStatus;
    const s = stepTcc({ tx, status, outcomes: [null, 42, { branch: 'a' }] as never, now: T0 + 1 });
    expect(s.status.branches!.map((b) => [b.name, b.state, b.attempts])).toEqual([
      ['a', 'Trying', 1],
      ['b', 'Trying', 1],
    ]);
    expect(s.calls.map((c) => c.branch)).toEqual(['a', 'b']);
  });

  it('under a Confirm decision a branch without a successful Try → Failed, never Confirm', () => {
    const tx = makeTx(['a', 'b']);
    const s = stepTcc({
      tx,
      status: { phase: 'Confirming', decision: 'Confirm', branches: [{ name: 'a', state: 'Prepared', attempts: 0 }] },
      outcomes: [],
      now: T0,
    });
    expect(s.calls).toEqual([]);
    expect(s.status.phase).toBe('Failed');
    expect(s.status.message).toMatch(/branch b is Pending/);
  });

  it('bounds error texts kept in status and events', () => {
    const tx = makeTx(['a']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'refused', T0, { message: 'x'.repeat(100_000) })], now: T0 });
    expect(s2.status.message!.length).toBeLessThanOrEqual(1024);
    expect(s2.status.message!.startsWith('branch a: Try refused: xxx')).toBe(true);
    const s3 = stepTcc({ tx, status: s2.status, outcomes: [outcome(s2.calls[0]!, 'retryable', T0, { message: 'y'.repeat(100_000) })], now: T0 });
    expect(s3.status.branches![0]!.lastError!.length).toBeLessThanOrEqual(1024);
    for (const e of s3.events) expect(e.message.length).toBeLessThanOrEqual(1024);
    for (const e of s2.events) expect(e.message.length).toBeLessThanOrEqual(1024);
  });

  it('an invalid spec fails before any call, naming the field', () => {
    const tx = makeTx(['a'], { timeout: '30 seconds' });
    const s = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.calls).toEqual([]);
    expect(s.status.phase).toBe('Failed');
    expect(s.status.message).toBe('invalid spec: spec.timeout: invalid duration "30 seconds": expected a number with a unit (ns, us, ms, s, m, h), e.g. "250ms", "30s", "1m30s"');
    expect(s.events.map((e) => e.reason)).toEqual(['InvalidSpec']);
    expect(s.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    const empty = stepTcc({ tx: makeTx([]), status: undefined, outcomes: [], now: T0 });
    expect(empty.status).toMatchObject({ phase: 'Failed', message: 'invalid spec: spec.branches: at least one branch is required' });
  });

  it('step() dispatches TCC, fails other modes visibly, and never throws', () => {
    const tcc = step({ tx: makeTx(['a']), status: undefined, outcomes: [], now: T0 });
    expect(tcc.calls).toHaveLength(1);
    const bogus = step({ tx: makeTx(['a'], { mode: 'Nope' as never }), status: { observedGeneration: 1 }, outcomes: [], now: T0 });
    expect(bogus.calls).toEqual([]);
    expect(bogus.status).toMatchObject({ phase: 'Failed', observedGeneration: 1, conditions: [{ type: 'Succeeded', status: 'False', reason: 'Failed' }] });
    expect(bogus.status.message).toMatch(/spec\.mode "Nope" is not supported/);
    expect(bogus.events).toEqual([{ type: 'Warning', reason: 'ModeNotSupported', message: bogus.status.message }]);
    const weird = step({ tx: null, status: 5, outcomes: 'x', now: NaN } as never);
    expect(weird.calls).toEqual([]);
  });
});

describe('TCC odd clocks', () => {
  it('a non-finite now changes nothing; absurd finishedAt values are clamped to the call’s lifetime', () => {
    const tx = makeTx(['a']);
    const s1 = stepTcc({ tx, status: undefined, outcomes: [], now: T0 });
    const bad = stepTcc({ tx, status: s1.status, outcomes: [], now: NaN });
    expect(bad.calls).toEqual([]);
    expect(bad.status).toEqual(s1.status);
    expect(bad.events.map((e) => e.reason)).toEqual(['InvalidInput']);
    const past = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', -1e20)], now: T0 + 10 });
    expect(Date.parse(past.status.branches![0]!.nextAttemptTime!)).toBe(T0 + delay('a', 'Try', 1));
    const future = stepTcc({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', 1e20)], now: T0 + 10 });
    expect(Date.parse(future.status.branches![0]!.nextAttemptTime!)).toBe(T0 + 10 + delay('a', 'Try', 1));
  });
});

describe('TCC: a status written by hand', () => {
  it('two entries for one branch (the CRD no longer refuses them: status.branches is atomic): the first counts, one entry per spec branch comes out', () => {
    const tx = makeTx(['a', 'b']);
    const status: TransactionStatus = {
      phase: 'Trying',
      startTime: iso(T0),
      branches: [
        { name: 'a', state: 'Prepared', attempts: 1 },
        { name: 'a', state: 'Refused', attempts: 1 },
        { name: 'b', state: 'Prepared', attempts: 1 },
      ],
    };
    const out = step({ tx, status, outcomes: [], now: T0 + 10 });
    expect(out.status.branches!.map((b) => `${b.name}:${b.state}`)).toEqual(['a:Confirming', 'b:Confirming']);
    expect(out.status.decision).toBe('Confirm');
  });
});

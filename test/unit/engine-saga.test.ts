import { describe, expect, it } from 'vitest';
import { step, stepSaga } from '../../src/engine/index.js';
import { effectiveRetryPolicy, retryDelayMs } from '../../src/engine/backoff.js';
import type { TransactionStatus } from '../../src/api/types.js';
import type { StepOutput } from '../../src/engine/types.js';
import { T0, outcome } from './engine-helpers.js';
import { b64, sagaTx } from './engine-saga-helpers.js';

const iso = (ms: number) => new Date(ms).toISOString();
const delay = (branch: string, method: string, attempt: number, retry = {}) =>
  retryDelayMs(effectiveRetryPolicy({ retry }), { uid: 'uid-1', branch, method, attempt });
const calls = (out: StepOutput) => out.calls.map((c) => `${c.method} ${c.branch}#${c.attempt}`);
const states = (s: TransactionStatus) => Object.fromEntries(s.branches!.map((b) => [b.name, b.state]));

describe('Saga happy path', () => {
  it('runs a diamond in dependency order, one write per wave, and completes without a decision', () => {
    const tx = sagaTx({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    expect(calls(s1)).toEqual(['Execute a#1']);
    // Write-ahead of "attempted": a crash must not hide an Execute that may have happened.
    expect(s1.persistBeforeCalls).toBe(true);
    expect(s1.status).toMatchObject({ phase: 'Executing', progress: '0/4', conditions: [{ status: 'Unknown', reason: 'Executing' }] });
    expect(states(s1.status)).toEqual({ a: 'Executing', b: 'Pending', c: 'Pending', d: 'Pending' });

    const s2 = stepSaga({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 5, { data: b64('A') })], now: T0 + 5 });
    expect(calls(s2)).toEqual(['Execute b#1', 'Execute c#1']);
    expect(s2.persistBeforeCalls).toBe(true);
    expect(s2.status.branches![0]).toMatchObject({ state: 'Executed', result: b64('A') });

    const s3 = stepSaga({ tx, status: s2.status, outcomes: s2.calls.map((c) => outcome(c, 'ok', T0 + 9)), now: T0 + 9 });
    expect(calls(s3)).toEqual(['Execute d#1']);
    const s4 = stepSaga({ tx, status: s3.status, outcomes: [outcome(s3.calls[0]!, 'ok', T0 + 12)], now: T0 + 12 });
    expect(s4.calls).toEqual([]);
    expect(s4.requeueAfterMs).toBeUndefined();
    expect(s4.status).toMatchObject({
      phase: 'Completed',
      progress: '4/4',
      message: 'all 4 branches executed',
      completionTime: iso(T0 + 12),
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Completed' }],
    });
    expect(s4.status.decision).toBeUndefined();
    expect(s4.events).toEqual([{ type: 'Normal', reason: 'Completed', message: 'all 4 branches executed' }]);
    const s5 = stepSaga({ tx, status: s4.status, outcomes: [], now: T0 + 99_999 });
    expect(s5).toEqual({ status: s4.status, calls: [], persistBeforeCalls: false, events: [] });
  });

  it('independent branches run together: two writes in all', () => {
    const tx = sagaTx({ a: [], b: [], c: [] });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    expect(calls(s1)).toEqual(['Execute a#1', 'Execute b#1', 'Execute c#1']);
    const s2 = stepSaga({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0 + 1)), now: T0 + 1 });
    expect(s2.status.phase).toBe('Completed');
  });

  it('step() dispatches Saga', () => {
    expect(calls(step({ tx: sagaTx({ x: [] }), status: undefined, outcomes: [], now: T0 }))).toEqual(['Execute x#1']);
  });
});

describe('Saga compensation', () => {
  it('a refusal compensates what may have executed, dependents first, and never what was not attempted or refused', () => {
    const tx = sagaTx({ a: [], b: ['a'], c: ['a'], d: ['b'], e: [] });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    const [a, e] = s1.calls;
    const s2 = stepSaga({ tx, status: s1.status, outcomes: [outcome(a!, 'ok', T0 + 1, { data: b64('ra') }), outcome(e!, 'ok', T0 + 1)], now: T0 + 1 });
    const [b, c] = s2.calls;
    const s3 = stepSaga({
      tx,
      status: s2.status,
      outcomes: [outcome(b!, 'refused', T0 + 2, { message: 'no stock' }), outcome(c!, 'retryable', T0 + 2, { message: 'UNAVAILABLE' })],
      now: T0 + 2,
    });
    expect(s3.status).toMatchObject({ phase: 'Compensating', decision: 'Compensate', decisionTime: iso(T0 + 2), message: 'branch b: Execute refused: no stock' });
    expect(s3.persistBeforeCalls).toBe(true);
    // c may have executed (retryable) and has no dependents; a waits for c; e is independent.
    expect(calls(s3)).toEqual(['Compensate c#1', 'Compensate e#1']);
    expect(states(s3.status)).toEqual({ a: 'Executed', b: 'Refused', c: 'Compensating', d: 'Pending', e: 'Compensating' });
    // Done with compensation: b and d, which never executed.
    expect(s3.status.progress).toBe('2/5');
    expect(s3.events.map((x) => x.reason)).toEqual(['CallFailed', 'CallFailed', 'Decided']);

    const s4 = stepSaga({ tx, status: s3.status, outcomes: s3.calls.map((x) => outcome(x, 'ok', T0 + 3)), now: T0 + 3 });
    expect(s4.calls).toEqual([{ branch: 'a', method: 'Compensate', attempt: 1, result: b64('ra') }]);
    const s5 = stepSaga({ tx, status: s4.status, outcomes: [outcome(s4.calls[0]!, 'ok', T0 + 4)], now: T0 + 4 });
    expect(s5.status).toMatchObject({
      phase: 'Compensated',
      progress: '5/5',
      message: 'branch b: Execute refused: no stock',
      completionTime: iso(T0 + 4),
      conditions: [{ status: 'False', reason: 'Compensated' }],
    });
    expect(states(s5.status)).toEqual({ a: 'Compensated', b: 'Refused', c: 'Compensated', d: 'Pending', e: 'Compensated' });
    expect(s5.events).toEqual([{ type: 'Warning', reason: 'Compensated', message: '3 branch(es) compensated: branch b: Execute refused: no stock' }]);
  });

  it('retries a failing Execute until the timeout, then compensates it (it may have happened), with no Execute after', () => {
    const tx = sagaTx({ a: [], b: ['a'] }, { timeout: '10s' });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepSaga({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'timeout', T0 + 5_000)], now: T0 + 5_000 });
    expect(s2.calls).toEqual([]);
    expect(s2.status.branches![0]).toMatchObject({ state: 'Executing', attempts: 1, lastError: 'call timed out', nextAttemptTime: iso(T0 + 5_000 + delay('a', 'Execute', 1)) });
    expect(s2.requeueAfterMs).toBe(delay('a', 'Execute', 1));
    const at = T0 + 5_000 + delay('a', 'Execute', 1);
    const s3 = stepSaga({ tx, status: s2.status, outcomes: [], now: at });
    expect(calls(s3)).toEqual(['Execute a#2']);
    expect(s3.persistBeforeCalls).toBe(false); // a retry: "attempted" is already stored
    const s4 = stepSaga({ tx, status: s3.status, outcomes: [outcome(s3.calls[0]!, 'timeout', T0 + 10_000)], now: T0 + 10_000 });
    expect(s4.status).toMatchObject({ phase: 'Compensating', message: 'timeout 10s passed before every Execute succeeded (waiting on: a, b)' });
    expect(calls(s4)).toEqual(['Compensate a#1']);
    expect(s4.status.branches![0]).toMatchObject({ attempts: 1 });
    expect(s4.status.branches![0]!.lastError).toBeUndefined();
    // A late Execute answer after the decision changes nothing.
    const late = stepSaga({ tx, status: s4.status, outcomes: [outcome(s3.calls[0]!, 'ok', T0 + 10_001), { ...outcome(s4.calls[0]!, 'retryable', T0 + 10_001), method: 'Execute' }], now: T0 + 10_001 });
    expect(states(late.status)).toEqual({ a: 'Compensating', b: 'Pending' });
  });

  it('Compensate is retried on any non-OK (refused included) and goes Failed when maxAttempts is spent; decision kept', () => {
    const retry = { maxAttempts: 2, initialInterval: '1s' };
    const tx = sagaTx({ a: [] }, { retry });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = stepSaga({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'retryable', T0 + 1)], now: T0 + 1 });
    // Abort-free path to a decision: the timeout.
    const s3 = stepSaga({ tx, status: s2.status, outcomes: [], now: T0 + 30_000 });
    expect(calls(s3)).toEqual(['Compensate a#1']);
    const s4 = stepSaga({ tx, status: s3.status, outcomes: [outcome(s3.calls[0]!, 'refused', T0 + 30_001, { message: 'busy' })], now: T0 + 30_001 });
    expect(s4.calls).toEqual([]);
    const due = Date.parse(s4.status.branches![0]!.nextAttemptTime!);
    const s5 = stepSaga({ tx, status: s4.status, outcomes: [], now: due });
    expect(calls(s5)).toEqual(['Compensate a#2']);
    expect(s5.persistBeforeCalls).toBe(true);
    const s6 = stepSaga({ tx, status: s5.status, outcomes: [outcome(s5.calls[0]!, 'retryable', due + 1, { message: 'UNAVAILABLE: down' })], now: due + 1 });
    expect(s6.status).toMatchObject({
      phase: 'Failed',
      decision: 'Compensate',
      message: 'branch a: Compensate failed 2 times, retry budget spent: UNAVAILABLE: down',
      conditions: [{ status: 'False', reason: 'Failed' }],
    });
    expect(s6.status.completionTime).toBeUndefined();
    expect(s6.events.map((e) => e.reason)).toEqual(['CallFailed', 'RetryBudgetExhausted']);
    expect(s6.calls).toEqual([]);
    expect(stepSaga({ tx, status: s6.status, outcomes: [], now: due + 1e9 }).calls).toEqual([]);
  });

  it('after a crash, an Executing branch whose answer was lost is compensated; a Pending one is not', () => {
    const tx = sagaTx({ a: [], b: ['a'] });
    const s1 = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    // The controller persisted s1 (persistBeforeCalls), called a, and died.
    const s2 = stepSaga({ tx, status: s1.status, outcomes: [], now: T0 + 40_000 });
    expect(s2.status.phase).toBe('Compensating');
    expect(calls(s2)).toEqual(['Compensate a#1']);
    // Before the deadline, the same status re-issues the Execute at once.
    expect(calls(stepSaga({ tx, status: s1.status, outcomes: [], now: T0 + 1_000 }))).toEqual(['Execute a#2']);
  });

  it('a status that lost its decision but shows a Compensated branch keeps compensating', () => {
    const tx = sagaTx({ a: [], b: [] });
    const status: TransactionStatus = {
      phase: 'Executing',
      branches: [
        { name: 'a', state: 'Compensated', attempts: 1 },
        { name: 'b', state: 'Executed', attempts: 1 },
      ],
    };
    const s = stepSaga({ tx, status, outcomes: [], now: T0 });
    expect(s.status.decision).toBe('Compensate');
    expect(calls(s)).toEqual(['Compensate b#2']);
  });
});

describe('Saga invalid spec', () => {
  it('a dependency cycle fails at once, naming the field, with no call', () => {
    const tx = sagaTx({ root: [], a: ['b'], b: ['a'] });
    const s = stepSaga({ tx, status: undefined, outcomes: [], now: T0 });
    expect(s.calls).toEqual([]);
    expect(s.status).toMatchObject({ phase: 'Failed', message: 'invalid spec: spec.branches[1].dependsOn: dependency cycle a → b → a' });
    expect(s.events).toEqual([{ type: 'Warning', reason: 'InvalidSpec', message: s.status.message }]);
    expect(s.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(s.status.decision).toBeUndefined();
    expect(s.requeueAfterMs).toBeUndefined();
  });

  it('unknown and self dependencies are refused the same way', () => {
    const s = stepSaga({ tx: sagaTx({ a: ['a'], b: ['zz'] }), status: undefined, outcomes: [], now: T0 });
    expect(s.status.message).toBe(
      'invalid spec: spec.branches[0].dependsOn[0]: branch "a" cannot depend on itself; spec.branches[1].dependsOn[0]: unknown branch "zz"',
    );
    expect(s.calls).toEqual([]);
  });

  it('never throws and is deterministic on junk', () => {
    const tx = sagaTx({ a: [] });
    const junk = { tx, status: { phase: 7, branches: [null, { name: 'a', state: 'Nope', attempts: -1 }] } as never, outcomes: 'x' as never, now: T0 };
    expect(stepSaga(junk)).toEqual(stepSaga(junk));
    expect(calls(stepSaga(junk))).toEqual(['Execute a#1']);
  });
});

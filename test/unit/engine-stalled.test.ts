/**
 * What the status says about failures, through the public step: the Stalled
 * condition (thresholds, permanent errors at once, cleared on progress), the
 * waiting message of forward phases, a Failed transaction that schedules
 * nothing and says how to resume, and the timing base.
 */
import { describe, expect, it } from 'vitest';
import type { TransactionStatus } from '../../src/api/types.js';
import { conservativeStart, makeStep, startTimeOf, step } from '../../src/engine/index.js';
import type { StepOutput } from '../../src/engine/types.js';
import { T0, makeTx, outcome } from './engine-helpers.js';

const stalled = (s: TransactionStatus) => s.conditions?.find((c) => c.type === 'Stalled');

/** A TCC transaction of `names` that has decided Confirm at T0 + 10 (every Try OK). */
function confirming(names: string[], retry = { initialInterval: '100ms', maxInterval: '100ms' }) {
  const tx = makeTx(names, { retry });
  const s1 = step({ tx, status: undefined, outcomes: [], now: T0 });
  const s2 = step({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0 + 10)), now: T0 + 10 });
  expect(s2.status.phase).toBe('Confirming');
  return { tx, out: s2 };
}

/** Fails every call of `out` with `message`, then steps at each retry time, `n` times. */
function failConfirms(tx: ReturnType<typeof makeTx>, out: StepOutput, n: number, message = 'UNAVAILABLE: down', run = step): StepOutput[] {
  const seen: StepOutput[] = [];
  let now = T0 + 10;
  for (let i = 0; i < n; i++) {
    now += 1;
    out = run({ tx, status: out.status, outcomes: out.calls.map((c) => outcome(c, 'retryable', now, { message })), now });
    seen.push(out);
    now += out.requeueAfterMs ?? 0;
    out = run({ tx, status: out.status, outcomes: [], now });
    seen.push(out);
  }
  return seen;
}

describe('Stalled', () => {
  it('is absent until a branch failed --stall-after-attempts calls in a row, then True with one Warning', () => {
    const { tx, out } = confirming(['a']);
    const run = makeStep({ stall: { afterAttempts: 3 } });
    const steps = failConfirms(tx, out, 4, 'UNAVAILABLE: down', run);
    const firstStalled = steps.findIndex((s) => stalled(s.status)?.status === 'True');
    // Step pairs: (failure i, retry i); the 3rd failure is at index 4.
    expect(firstStalled).toBe(4);
    for (const s of steps.slice(0, firstStalled)) expect(stalled(s.status)).toBeUndefined();
    expect(stalled(steps[4]!.status)).toMatchObject({ status: 'True', reason: 'CallsFailing' });
    expect(stalled(steps[4]!.status)!.message).toMatch(/^branch a: Confirm failed 3 times since 2025-03-01T12:00:00.010Z: UNAVAILABLE: down; kubetx keeps retrying/);
    const warnings = steps.flatMap((s) => s.events).filter((e) => e.reason === 'Stalled');
    expect(warnings).toHaveLength(1);
    // Still stalled while it fails; the transition time does not move.
    const last = steps.at(-1)!.status;
    expect(stalled(last)!.lastTransitionTime).toBe(stalled(steps[4]!.status)!.lastTransitionTime);
  });

  it('is True at the first failure for an error no retry fixes (EndpointMisconfigured, INVALID_ARGUMENT)', () => {
    const { tx, out } = confirming(['a']);
    const [failed] = failConfirms(tx, out, 1, 'EndpointMisconfigured: the endpoint does not serve kubetx.v1.TccParticipant (UNIMPLEMENTED)');
    expect(stalled(failed!.status)).toMatchObject({ status: 'True', reason: 'EndpointMisconfigured' });
    const { tx: tx2, out: out2 } = confirming(['a']);
    const [bad] = failConfirms(tx2, out2, 1, 'INVALID_ARGUMENT: amount');
    expect(stalled(bad!.status)).toMatchObject({ status: 'True', reason: 'InvalidArgument' });
  });

  it('is True once a branch has been failing --stall-after since the decision, whatever the count', () => {
    const { tx, out } = confirming(['a'], { initialInterval: '1s', maxInterval: '1s' });
    const run = makeStep({ stall: { afterAttempts: 100, afterMs: 2_500 } });
    const steps = failConfirms(tx, out, 4, 'UNAVAILABLE: down', run);
    const first = steps.find((s) => stalled(s.status)?.status === 'True')!;
    const failedAt = Date.parse(first.status.branches![0]!.lastAttemptTime!);
    expect(failedAt - (T0 + 10)).toBeGreaterThanOrEqual(2_000);
  });

  it('clears to False/Progressing with a Resumed Event when calls succeed again, and to the phase when it finishes', () => {
    const { tx, out } = confirming(['a', 'b']);
    const run = makeStep({ stall: { afterAttempts: 2 } });
    // b fails twice (stalled), a succeeds.
    let s = run({ tx, status: out.status, outcomes: [outcome(out.calls[0]!, 'ok', T0 + 11), outcome(out.calls[1]!, 'retryable', T0 + 11, { message: 'UNAVAILABLE: b down' })], now: T0 + 11 });
    s = run({ tx, status: s.status, outcomes: [], now: T0 + 1_000 });
    s = run({ tx, status: s.status, outcomes: s.calls.map((c) => outcome(c, 'retryable', T0 + 1_001, { message: 'UNAVAILABLE: b down' })), now: T0 + 1_001 });
    expect(stalled(s.status)?.status).toBe('True');
    s = run({ tx, status: s.status, outcomes: [], now: T0 + 2_000 });
    const done = run({ tx, status: s.status, outcomes: s.calls.map((c) => outcome(c, 'ok', T0 + 2_001)), now: T0 + 2_001 });
    expect(done.status.phase).toBe('Committed');
    expect(stalled(done.status)).toMatchObject({ status: 'False', reason: 'Committed' });
    // A healthy transaction never carries the condition.
    const healthy = confirming(['x']).out;
    const committed = step({ tx: makeTx(['x']), status: healthy.status, outcomes: healthy.calls.map((c) => outcome(c, 'ok', T0 + 20)), now: T0 + 20 });
    expect(committed.status.phase).toBe('Committed');
    expect(stalled(committed.status)).toBeUndefined();
  });
});

describe('the status says what to do', () => {
  it('a forward phase waiting on a failing Try says on what, in status.message and the condition', () => {
    const tx = makeTx(['a', 'b']);
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = step({ tx, status: s1.status, outcomes: [outcome(s1.calls[0]!, 'ok', T0 + 5), outcome(s1.calls[1]!, 'retryable', T0 + 5, { message: 'UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:50059' })], now: T0 + 5 });
    expect(s2.status.phase).toBe('Trying');
    expect(s2.status.message).toBe('waiting on b: UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:50059');
    expect(s2.status.conditions?.find((c) => c.type === 'Succeeded')?.message).toBe(s2.status.message);
  });

  it('Failed schedules nothing and says how to resume, in the status and the Event', () => {
    const tx = makeTx(['a'], { retry: { initialInterval: '100ms', maxAttempts: 1 } });
    tx.metadata.name = 'pay-7';
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 });
    const s2 = step({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'ok', T0 + 1)), now: T0 + 1 });
    const s3 = step({ tx, status: s2.status, outcomes: s2.calls.map((c) => outcome(c, 'retryable', T0 + 2, { message: 'UNAVAILABLE: down' })), now: T0 + 2 });
    expect(s3.status.phase).toBe('Failed');
    expect(s3.status.branches![0]!.nextAttemptTime).toBeUndefined();
    expect(s3.status.message).toMatch(/retry budget spent: UNAVAILABLE: down; fix the cause, then resume with: kubectl dtx retry pay-7 -n shop$/);
    expect(s3.events.find((e) => e.reason === 'RetryBudgetExhausted')?.message).toContain('kubectl dtx retry pay-7 -n shop');
  });
});

describe('timing base', () => {
  it('is the earlier of the first look and the end of the creationTimestamp second, never before creation', () => {
    const ct = '2025-03-01T12:00:05Z';
    const stamped = Date.parse(ct);
    expect(conservativeStart(ct, stamped + 300)).toBe(stamped + 300);
    expect(conservativeStart(ct, stamped + 5_000)).toBe(stamped + 1_000);
    // A clock behind the API server's cannot put the start before the stamp.
    expect(conservativeStart(ct, stamped - 50)).toBe(stamped);
    const tx = makeTx(['a']);
    tx.metadata.creationTimestamp = ct;
    // A precise start on record is kept; an older operator's truncated copy of the timestamp is not trusted.
    expect(startTimeOf({ startTime: '2025-03-01T12:00:05.420Z' }, tx, stamped + 9_000)).toBe('2025-03-01T12:00:05.420Z');
    expect(startTimeOf({ startTime: ct }, tx, stamped + 9_000)).toBe('2025-03-01T12:00:06.000Z');
  });

  it('a 1s timeout counts from it: no Cancel before the real second has passed', () => {
    const tx = makeTx(['a'], { timeout: '1s' });
    tx.metadata.creationTimestamp = '2025-03-01T12:00:00Z';
    // Created at x.900 (the stamp says x.000); the operator first looks at x.950.
    const s1 = step({ tx, status: undefined, outcomes: [], now: T0 + 950 });
    const s2 = step({ tx, status: s1.status, outcomes: s1.calls.map((c) => outcome(c, 'retryable', T0 + 960, { message: 'UNAVAILABLE' })), now: T0 + 960 });
    // Before: decided Cancel here (creationTimestamp + 1 s = x+1.000 had passed by x+1.1).
    const s3 = step({ tx, status: s2.status, outcomes: [], now: T0 + 1_100 });
    expect(s3.status.decision).toBeUndefined();
    const late = step({ tx, status: s3.status, outcomes: [], now: T0 + 1_950 });
    expect(late.status.decision).toBe('Cancel');
  });
});

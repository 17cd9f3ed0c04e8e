/**
 * Property tests: a simulated controller drives the Notify engine against
 * receivers that answer at random (offline for a while, flaky, slow), with
 * crashes that drop everything not persisted, early wake-ups and stale
 * outcomes. Every call is recorded: none before its time in the schedule,
 * none past the cap, none after the end.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTerminalNotifyPhase, notifyDelayMs, resolveNotify, stepNotify } from '../../src/engine/notify.js';
import type { NotifySpec, TransactionStatus } from '../../src/api/types.js';
import type { Call, CallOutcome, OutcomeKind } from '../../src/engine/types.js';
import { T0, makeTx, withStale } from './engine-helpers.js';

const CALL_TIMEOUT_MS = 5_000;
const MAX_STEPS_PER_RECONCILE = 50;
const MAX_RECONCILES = 3_000;

interface Scenario {
  branches: number;
  notify: NotifySpec;
  /** Per call; once empty every call answers ok. */
  answers: Array<{ kind: OutcomeKind; latencyMs: number }>;
  crashes: number[];
  wakeups: number[];
  stale: number[];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  branches: fc.integer({ min: 1, max: 5 }),
  notify: fc.record(
    {
      schedule: fc.array(fc.constantFrom('0s', '200ms', '500ms', '1s', '5s', '1m'), { minLength: 1, maxLength: 4 }),
      maxAttempts: fc.integer({ min: 0, max: 6 }),
    },
    { requiredKeys: [] },
  ),
  answers: fc.array(
    fc.record({
      kind: fc.constantFrom<OutcomeKind>('ok', 'retryable', 'retryable', 'timeout', 'refused'),
      latencyMs: fc.integer({ min: 0, max: CALL_TIMEOUT_MS }),
    }),
    { maxLength: 60 },
  ),
  crashes: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 60 }),
  wakeups: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
  stale: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 30 }),
});

interface CallRecord extends Call {
  at: number;
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `b${i}`);

function simulate(sc: Scenario) {
  const branchNames = names(sc.branches);
  const tx = makeTx(branchNames, { mode: 'Notify', uid: `uid-${sc.branches}` });
  tx.spec.notify = sc.notify;
  const { scheduleMs, maxAttempts } = resolveNotify(sc.notify);
  const answers = [...sc.answers];
  const crashes = [...sc.crashes];
  const wakeups = [...sc.wakeups];
  const stale = [...sc.stale];
  const crashHere = () => crashes.shift() === 0;

  let now = T0;
  let persisted: TransactionStatus | undefined;
  const calls: CallRecord[] = [];
  /** When each branch's last call failed, once a status computed from that answer was stored. */
  const failedAt = new Map<string, { attempt: number; at: number }>();
  /** Failures handed to the engine in this reconcile, not stored yet (a crash loses them). */
  const pending = new Map<string, { attempt: number; at: number }>();
  const store = (st: TransactionStatus) => {
    persisted = structuredClone(st);
    for (const [k, v] of pending) failedAt.set(k, v);
    pending.clear();
  };
  const history: CallOutcome[] = [];
  const ok = new Set<string>();

  let reconciles = 0;
  for (; reconciles < MAX_RECONCILES; reconciles++) {
    let status = persisted === undefined ? undefined : structuredClone(persisted);
    let outcomes: CallOutcome[] = [];
    let requeue: number | undefined;
    let crashed = false;
    for (let i = 0; ; i++) {
      const out = stepNotify({ tx, status, outcomes, now });
      const st = out.status;
      expect(st.decision).toBeUndefined();
      if (isTerminalNotifyPhase(st.phase)) {
        expect(out.calls).toEqual([]);
        expect(out.requeueAfterMs).toBeUndefined();
      }
      for (const c of out.calls) {
        expect(c.method).toBe('Deliver');
        expect(out.persistBeforeCalls).toBe(true);
        if (maxAttempts > 0) expect(c.attempt).toBeLessThanOrEqual(maxAttempts);
        // The schedule: attempt n+1 no sooner than attempt n + schedule[min(n-1, len-1)],
        // and no sooner than that delay after the failure of attempt n, when the engine heard of it.
        const prevCall = [...calls].reverse().find((p) => p.branch === c.branch);
        if (prevCall) {
          expect(c.attempt).toBeGreaterThan(prevCall.attempt);
          expect(now).toBeGreaterThanOrEqual(prevCall.at + notifyDelayMs(scheduleMs, prevCall.attempt));
          // A failure the engine was told of (in this step's input status or outcomes) counts from when it failed;
          // one lost to a crash before it was stored counts from when the attempt was made (checked above).
          const f = failedAt.get(c.branch) ?? pending.get(c.branch);
          if (f && f.attempt === prevCall.attempt) expect(now).toBeGreaterThanOrEqual(f.at + notifyDelayMs(scheduleMs, f.attempt));
          const scheduled = status?.branches?.find((b) => b.name === c.branch)?.nextAttemptTime;
          if (scheduled) expect(now).toBeGreaterThanOrEqual(Date.parse(scheduled));
        }
        // Once a branch is stored Delivered (or Exhausted) it is never called again. An OK not yet
        // stored when the controller crashed may be followed by another call: at-least-once.
        expect(['Delivered', 'Exhausted']).not.toContain(persisted?.branches?.find((b) => b.name === c.branch)?.state);
      }
      if (out.persistBeforeCalls) {
        if (crashHere()) {
          crashed = true;
          break;
        }
        store(st);
      }
      if (out.calls.length === 0 || i === MAX_STEPS_PER_RECONCILE) {
        store(st);
        requeue = out.calls.length === 0 ? out.requeueAfterMs : 0;
        break;
      }
      if (crashHere()) {
        crashed = true;
        break;
      }
      const fresh: CallOutcome[] = [];
      for (const c of out.calls) {
        calls.push({ ...c, at: now });
        const a = answers.shift() ?? { kind: 'ok' as OutcomeKind, latencyMs: 10 };
        const latency = a.kind === 'timeout' ? CALL_TIMEOUT_MS : a.latencyMs;
        fresh.push({ branch: c.branch, method: c.method, attempt: c.attempt, kind: a.kind, finishedAt: now + latency, ...(a.kind === 'ok' ? {} : { message: a.kind }) });
      }
      now = Math.max(now, ...fresh.map((o) => o.finishedAt));
      if (crashHere()) {
        crashed = true;
        break;
      }
      // Old answers (from earlier steps or a crashed run), before or after the fresh ones.
      outcomes = withStale(fresh, stale.shift(), history);
      for (const o of fresh) {
        if (o.kind === 'ok') ok.add(o.branch);
        else pending.set(o.branch, { attempt: o.attempt, at: o.finishedAt });
      }
      history.push(...fresh);
      status = st;
    }
    if (persisted && isTerminalNotifyPhase(persisted.phase)) break;
    if (crashed) {
      pending.clear();
      now += 1_000;
      continue;
    }
    expect(requeue).toBeDefined();
    const w = wakeups.shift();
    now += w !== undefined && w < 0.5 ? Math.floor(requeue! * w) : requeue!;
  }
  expect(reconciles).toBeLessThan(MAX_RECONCILES);
  return { final: persisted!, calls, ok, maxAttempts };
}

describe('Notify engine under a simulated controller (property)', () => {
  it('respects the schedule and the cap, crashes included; ends Delivered or Exhausted', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { final, calls, ok, maxAttempts } = simulate(sc);
        expect(final.phase === 'Delivered' || final.phase === 'Exhausted').toBe(true);
        for (const n of names(sc.branches)) {
          const mine = calls.filter((c) => c.branch === n);
          if (maxAttempts > 0) expect(mine.length).toBeLessThanOrEqual(maxAttempts);
          const b = final.branches!.find((x) => x.name === n)!;
          if (b.state === 'Delivered') expect(ok.has(n)).toBe(true);
          if (b.state === 'Exhausted') expect(b.attempts).toBe(maxAttempts);
        }
        if (final.phase === 'Delivered') for (const n of names(sc.branches)) expect(ok.has(n)).toBe(true);
        if (final.phase === 'Exhausted') expect(final.branches!.some((b) => b.state === 'Exhausted')).toBe(true);
        if (maxAttempts === 0) expect(final.phase).toBe('Delivered');
        expect(final.completionTime).toBeDefined();
      }),
      { numRuns: 500 },
    );
  }, 60_000);

  it('without crashes: exactly maxAttempts calls to a receiver that never answers OK, one per scheduled slot', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('100ms', '200ms', '1s', '30s'), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 12 }),
        (schedule, maxAttempts) => {
          const { final, calls } = simulate({
            branches: 1,
            notify: { schedule, maxAttempts },
            answers: Array.from({ length: maxAttempts }, () => ({ kind: 'retryable' as OutcomeKind, latencyMs: 7 })),
            crashes: [],
            wakeups: [],
            stale: [],
          });
          expect(final.phase).toBe('Exhausted');
          expect(calls).toHaveLength(maxAttempts);
          const sched = resolveNotify({ schedule }).scheduleMs;
          for (let i = 1; i < calls.length; i++) {
            expect(calls[i]!.at - calls[i - 1]!.at).toBe(7 + notifyDelayMs(sched, i));
          }
        },
      ),
      { numRuns: 200 },
    );
  }, 60_000);

  it('is deterministic and never throws on arbitrary status and outcomes', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.integer({ min: T0 - 1e9, max: T0 + 1e9 }), (status, outcomes, now) => {
        const tx = makeTx(['a', 'b'], { mode: 'Notify' });
        const input = { tx, status: status as TransactionStatus, outcomes: outcomes as CallOutcome[], now };
        expect(stepNotify(input)).toEqual(stepNotify(input));
      }),
      { numRuns: 300 },
    );
  }, 60_000);
});

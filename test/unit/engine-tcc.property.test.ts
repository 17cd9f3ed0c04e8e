/**
 * Property tests: a simulated controller drives the TCC engine against
 * participants that answer at random, with random delays, spurious early
 * wake-ups, stale re-delivered outcomes, and crashes that drop everything not
 * yet persisted. Every call made in the whole run is recorded and checked.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stepTcc, isTerminalTccPhase } from '../../src/engine/tcc.js';
import type { Decision, RetryPolicy, TransactionStatus } from '../../src/api/types.js';
import type { Call, CallOutcome, OutcomeKind, StepOutput } from '../../src/engine/types.js';
import { T0, makeTx, withStale } from './engine-helpers.js';

const CALL_TIMEOUT_MS = 5_000; // the default callTimeout
const MAX_STEPS_PER_RECONCILE = 50; // a controller's guard against a reconcile that never ends
const MAX_RECONCILES = 1_000;

interface Answer {
  kind: OutcomeKind;
  latencyMs: number;
}

interface Scenario {
  branches: number;
  timeout: string;
  retry: RetryPolicy;
  startDelayMs: number;
  /** Participants' answers, consumed call by call; once empty every call answers ok. */
  answers: Answer[];
  /** One entry per crash point; 0 = crash there. Once empty, no more crashes. */
  crashes: number[];
  /** One entry per wait; < 0.5 = wake up early at that fraction of the requeue delay. */
  wakeups: number[];
  /** One entry per delivery; a value < 3 re-delivers an old outcome along with the fresh ones. */
  stale: number[];
}

const answer = (allowRefuse: boolean): fc.Arbitrary<Answer> =>
  fc.record({
    kind: fc.oneof(
      { arbitrary: fc.constant<OutcomeKind>('ok'), weight: 5 },
      { arbitrary: fc.constant<OutcomeKind>('retryable'), weight: 3 },
      { arbitrary: fc.constant<OutcomeKind>('timeout'), weight: 1 },
      { arbitrary: fc.constant<OutcomeKind>('refused'), weight: allowRefuse ? 1 : 0 },
    ),
    latencyMs: fc.integer({ min: 0, max: CALL_TIMEOUT_MS }),
  });

const scenario: fc.Arbitrary<Scenario> = fc.boolean().chain((allowRefuse) =>
  fc.record({
    branches: fc.integer({ min: 1, max: 8 }),
    timeout: fc.constantFrom('3s', '10s', '30s', '2m'),
    retry: fc.record(
      {
        initialInterval: fc.constantFrom('0s', '100ms', '1s', '3s'),
        maxInterval: fc.constantFrom('500ms', '10s', '5m'),
        multiplier: fc.constantFrom(1, 1.5, 2, 3),
        maxAttempts: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 2 }),
      },
      { requiredKeys: [] },
    ),
    startDelayMs: fc.integer({ min: 0, max: 4_000 }),
    answers: fc.array(answer(allowRefuse), { maxLength: 60 }),
    crashes: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 80 }),
    wakeups: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
    stale: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 40 }),
  }),
);

interface CallRecord extends Call {
  at: number;
}

interface RunResult {
  final: TransactionStatus;
  calls: CallRecord[];
  reconciles: number;
  steps: number;
}

const branchNames = (n: number) => Array.from({ length: n }, (_, i) => `b${i}`);

function simulate(sc: Scenario): RunResult {
  const names = branchNames(sc.branches);
  const tx = makeTx(names, { timeout: sc.timeout, retry: sc.retry, uid: `uid-${sc.branches}-${sc.answers.length}` });
  const maxAttempts = sc.retry.maxAttempts ?? 0;
  const answers = [...sc.answers];
  const crashes = [...sc.crashes];
  const wakeups = [...sc.wakeups];
  const stale = [...sc.stale];
  const crashHere = () => crashes.shift() === 0;

  let now = T0 + sc.startDelayMs;
  let persisted: TransactionStatus | undefined;
  let persistedDecision: Decision | undefined;
  const allCalls: CallRecord[] = [];
  const history: CallOutcome[] = [];
  const tryOk = new Set<string>(); // branches whose Try answered ok to the engine
  const refused = new Set<string>(); // branches whose Try answered refused to the engine
  const finalOk = new Map<string, Set<string>>([
    ['Confirm', new Set()],
    ['Cancel', new Set()],
  ]);
  let steps = 0;

  const persist = (status: TransactionStatus) => {
    // A decision, once persisted, never changes or disappears.
    if (persistedDecision !== undefined) expect(status.decision).toBe(persistedDecision);
    if (persistedDecision === undefined && status.decision === 'Cancel') {
      // Only a refusal or the forward timeout cancels: retryable failures never do by themselves.
      const refusedBy = /^branch (\S+): Try refused/.exec(status.message ?? '')?.[1];
      if (refusedBy !== undefined) expect(refused.has(refusedBy)).toBe(true);
      else expect(Date.parse(status.decisionTime!)).toBeGreaterThanOrEqual(Date.parse(status.startTime!) + parseTimeout(sc.timeout));
    }
    persistedDecision = status.decision;
    persisted = structuredClone(status);
  };

  const checkStep = (input: TransactionStatus | undefined, out: StepOutput, at: number) => {
    const st = out.status;
    expect(st.branches!.map((b) => b.name)).toEqual(names);
    expect(st.progress).toMatch(/^\d+\/\d+$/);
    if (input?.decision) expect(st.decision).toBe(input.decision);
    if (isTerminalTccPhase(st.phase)) {
      expect(out.calls).toEqual([]);
      expect(out.requeueAfterMs).toBeUndefined();
    }
    if (st.phase === 'Failed') expect(maxAttempts).toBeGreaterThan(0);
    for (const e of out.events) expect(['Decided', 'Committed', 'Aborted', 'CallFailed', 'RetryBudgetExhausted']).toContain(e.reason);
    const deadline = Date.parse(st.startTime!) + parseTimeout(sc.timeout);
    for (const c of out.calls) {
      // No call before its branch's nextAttemptTime (a schedule of Try no longer applies once decided).
      const before = input?.branches?.find((b) => b.name === c.branch)?.nextAttemptTime;
      if (before && input?.decision === st.decision) expect(at).toBeGreaterThanOrEqual(Date.parse(before));
      const after = st.branches!.find((b) => b.name === c.branch)!;
      expect(c.attempt).toBe(after.attempts);
      if (c.method === 'Try') {
        expect(st.decision).toBeUndefined();
        expect(at).toBeLessThan(deadline);
      } else {
        expect(st.decision).toBe(c.method);
        expect(out.persistBeforeCalls).toBe(true);
      }
    }
  };

  let reconciles = 0;
  for (; reconciles < MAX_RECONCILES; reconciles++) {
    let status = persisted === undefined ? undefined : structuredClone(persisted);
    let outcomes: CallOutcome[] = [];
    let requeue: number | undefined;
    let crashed = false;
    for (let i = 0; ; i++) {
      const out = stepTcc({ tx, status, outcomes, now });
      steps++;
      checkStep(status, out, now);
      if (out.persistBeforeCalls) {
        if (crashHere()) {
          crashed = true; // the write never happened, so no call is made
          break;
        }
        persist(out.status);
      }
      if (out.calls.length === 0 || i === MAX_STEPS_PER_RECONCILE) {
        persist(out.status);
        requeue = out.calls.length === 0 ? out.requeueAfterMs : 0;
        break;
      }
      if (crashHere()) {
        crashed = true;
        break;
      }
      // Make the calls, concurrently.
      const fresh: CallOutcome[] = [];
      for (const c of out.calls) {
        // Write-ahead: Confirm/Cancel only once the decision ordering it is stored.
        if (c.method === 'Confirm') expect(persisted?.decision).toBe('Confirm');
        if (c.method === 'Cancel') expect(persisted?.decision).toBe('Cancel');
        if (c.method === 'Try') expect(persisted?.decision).toBeUndefined();
        if (c.method === 'Confirm') for (const n of names) expect(tryOk.has(n)).toBe(true);
        allCalls.push({ ...c, at: now });
        const a = answers.shift() ?? { kind: 'ok', latencyMs: 10 };
        const latency = a.kind === 'timeout' ? CALL_TIMEOUT_MS : a.latencyMs;
        const o: CallOutcome = { branch: c.branch, method: c.method, attempt: c.attempt, kind: a.kind, finishedAt: now + latency };
        if (a.kind !== 'ok') o.message = `${a.kind} from ${c.branch}`;
        else if (c.method === 'Try') o.data = Buffer.from(`res-${c.branch}`).toString('base64');
        fresh.push(o);
      }
      now = Math.max(now, ...fresh.map((o) => o.finishedAt));
      if (crashHere()) {
        crashed = true; // calls made, answers lost
        break;
      }
      // Old answers (from earlier steps or a crashed run), before or after the fresh ones.
      outcomes = withStale(fresh, stale.shift(), history);
      for (const o of outcomes) {
        if (o.kind === 'refused' && o.method === 'Try') refused.add(o.branch);
        if (o.kind !== 'ok') continue;
        if (o.method === 'Try') tryOk.add(o.branch);
        else finalOk.get(o.method)?.add(o.branch);
      }
      history.push(...fresh);
      status = out.status;
    }
    if (persisted && isTerminalTccPhase(persisted.phase)) break;
    if (crashed) {
      now += 1_000; // the controller restarts and resumes from the last persisted status
      continue;
    }
    // A live, non-terminal transaction always says when to look again.
    expect(requeue).toBeDefined();
    const w = wakeups.shift();
    now += w !== undefined && w < 0.5 ? Math.floor(requeue! * w) : requeue!;
  }

  const final = persisted!;
  expect(isTerminalTccPhase(final.phase)).toBe(true);
  // Committed/Aborted: every branch got its final call answered ok (Cancel included where Try never answered).
  if (final.phase === 'Committed') for (const n of names) expect(finalOk.get('Confirm')!.has(n)).toBe(true);
  if (final.phase === 'Aborted') for (const n of names) expect(finalOk.get('Cancel')!.has(n)).toBe(true);
  return { final, calls: allCalls, reconciles, steps };
}

function parseTimeout(t: string): number {
  return { '3s': 3_000, '10s': 10_000, '30s': 30_000, '2m': 120_000 }[t]!;
}

describe('TCC engine under a simulated controller (property)', () => {
  it('is safe and live whatever the participants answer, with crashes and stale outcomes', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { final, calls, reconciles } = simulate(sc);
        const methods = new Set(calls.map((c) => c.method));
        // Never both Confirm and Cancel in one transaction.
        expect(methods.has('Confirm') && methods.has('Cancel')).toBe(false);
        if (methods.has('Confirm')) expect(final.decision).toBe('Confirm');
        if (methods.has('Cancel')) expect(final.decision).toBe('Cancel');
        // Confirm/Cancel calls per branch never exceed the budget, crashes included.
        const max = sc.retry.maxAttempts ?? 0;
        if (max > 0) {
          for (const n of branchNames(sc.branches)) {
            for (const m of ['Confirm', 'Cancel']) {
              expect(calls.filter((c) => c.branch === n && c.method === m).length).toBeLessThanOrEqual(max);
            }
          }
        } else {
          expect(final.phase === 'Committed' || final.phase === 'Aborted').toBe(true);
        }
        // Bounded: far fewer reconciles than the cap once participants answer ok.
        expect(reconciles).toBeLessThan(sc.answers.length + sc.crashes.length + sc.wakeups.length + 60);
      }),
      { numRuns: 600 },
    );
  });

  it('commits when every participant eventually says yes and no refusal comes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 40 }),
        (branches, crashes) => {
          const { final, calls } = simulate({
            branches,
            timeout: '2m',
            retry: {},
            startDelayMs: 0,
            answers: [],
            crashes,
            wakeups: [],
            stale: [],
          });
          expect(final.phase).toBe('Committed');
          expect(final.branches!.every((b) => b.state === 'Confirmed')).toBe(true);
          expect(calls.some((c) => c.method === 'Cancel')).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('without crashes or failures, a transaction costs one Try and one Confirm per branch and two writes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), (branches) => {
        const { calls, final, reconciles, steps } = simulate({
          branches,
          timeout: '30s',
          retry: {},
          startDelayMs: 0,
          answers: [],
          crashes: [],
          wakeups: [],
          stale: [],
        });
        expect(final.phase).toBe('Committed');
        expect(reconciles).toBe(0);
        expect(steps).toBe(3);
        expect(calls.filter((c) => c.method === 'Try')).toHaveLength(branches);
        expect(calls.filter((c) => c.method === 'Confirm')).toHaveLength(branches);
      }),
    );
  });

  it('is deterministic and never throws on arbitrary status and outcomes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.anything(),
        fc.anything(),
        fc.integer({ min: T0 - 1e9, max: T0 + 1e9 }),
        (branches, status, outcomes, now) => {
          const input = { tx: makeTx(branchNames(branches)), status: status as TransactionStatus, outcomes: outcomes as CallOutcome[], now };
          const a = stepTcc(input);
          const b = stepTcc(input);
          expect(b).toEqual(a);
        },
      ),
      { numRuns: 300 },
    );
  });
});

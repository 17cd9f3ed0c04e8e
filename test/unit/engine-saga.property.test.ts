/**
 * Property tests: a simulated controller drives the Saga engine over random
 * DAGs against participants that answer at random, with crashes that drop
 * everything not yet persisted, early wake-ups and stale re-delivered
 * outcomes. Participants keep what really happened (an Execute whose answer
 * was lost may still have executed), so the checks are about the world, not
 * the engine's view of it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTerminalSagaPhase, stepSaga } from '../../src/engine/saga.js';
import type { Decision, RetryPolicy, TransactionStatus } from '../../src/api/types.js';
import type { CallOutcome, OutcomeKind, StepOutput } from '../../src/engine/types.js';
import { T0, withStale } from './engine-helpers.js';
import { b64, sagaTx } from './engine-saga-helpers.js';

const CALL_TIMEOUT_MS = 5_000;
const MAX_STEPS_PER_RECONCILE = 50;
const MAX_RECONCILES = 1_000;
const TIMEOUTS: Record<string, number> = { '3s': 3_000, '10s': 10_000, '30s': 30_000, '2m': 120_000 };

interface Answer {
  kind: OutcomeKind;
  latencyMs: number;
  /** For a failed answer: whether the call took effect anyway (the answer was lost on the way back). */
  effect: boolean;
}

interface Scenario {
  /** deps[i] = indexes (< i) that branch i depends on. */
  deps: number[][];
  /** Spec order of the branches (a permutation). */
  order: number[];
  timeout: string;
  retry: RetryPolicy;
  answers: Answer[];
  crashes: number[];
  wakeups: number[];
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
    effect: fc.boolean(),
  });

const dag: fc.Arbitrary<{ deps: number[][]; order: number[] }> = fc
  .integer({ min: 1, max: 8 })
  .chain((n) =>
    fc.record({
      deps: fc.tuple(...Array.from({ length: n }, (_, i) => fc.subarray(Array.from({ length: i }, (_, j) => j), { maxLength: Math.min(3, i) }))),
      order: fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }),
    }),
  );

const scenario: fc.Arbitrary<Scenario> = fc.tuple(dag, fc.boolean()).chain(([g, allowRefuse]) =>
  fc.record({
    deps: fc.constant(g.deps),
    order: fc.constant(g.order),
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
    answers: fc.array(answer(allowRefuse), { maxLength: 60 }),
    crashes: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 80 }),
    wakeups: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
    stale: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 40 }),
  }),
);

interface RunResult {
  final: TransactionStatus;
  executed: Set<string>;
  compensated: Set<string>;
  executeCalled: Set<string>;
  compensateCalls: Map<string, number>;
  reconciles: number;
  steps: number;
}

function simulate(sc: Scenario): RunResult {
  const name = (i: number) => `b${i}`;
  const names = sc.order.map(name);
  const depsOf = new Map(sc.deps.map((ds, i) => [name(i), ds.map(name)]));
  const tx = sagaTx(Object.fromEntries(names.map((n) => [n, depsOf.get(n)!])), {
    timeout: sc.timeout,
    retry: sc.retry,
    uid: `uid-${sc.deps.length}-${sc.answers.length}`,
  });
  const maxAttempts = sc.retry.maxAttempts ?? 0;
  const timeoutMs = TIMEOUTS[sc.timeout]!;
  // Transitive dependents, from the generator's own edges (not the engine's DAG code).
  const dependents = (n: string): string[] => names.filter((m) => depsOf.get(m)!.includes(n)).flatMap((m) => [m, ...dependents(m)]);

  const answers = [...sc.answers];
  const crashes = [...sc.crashes];
  const wakeups = [...sc.wakeups];
  const stale = [...sc.stale];
  const crashHere = () => crashes.shift() === 0;

  // The participants' side: what really happened.
  const world = new Map<string, 'none' | 'executed' | 'refused'>(names.map((n) => [n, 'none']));
  const compensated = new Set<string>();
  // What the engine was told.
  const executeOkSeen = new Set<string>();
  const refusedSeen = new Set<string>();
  const compensateOkSeen = new Set<string>();
  const executeCalled = new Set<string>();
  const compensateCalls = new Map<string, number>();

  let now = T0;
  let persisted: TransactionStatus | undefined;
  let persistedDecision: Decision | undefined;
  const history: CallOutcome[] = [];
  let steps = 0;

  const persist = (status: TransactionStatus) => {
    if (persistedDecision !== undefined) expect(status.decision).toBe(persistedDecision);
    if (persistedDecision === undefined && status.decision !== undefined) {
      expect(status.decision).toBe('Compensate');
      // Only a refusal or the forward timeout compensates: retryable failures never do by themselves.
      const refusedBy = /^branch (\S+): Execute refused/.exec(status.message ?? '')?.[1];
      if (refusedBy !== undefined) expect(refusedSeen.has(refusedBy)).toBe(true);
      else expect(Date.parse(status.decisionTime!)).toBeGreaterThanOrEqual(T0 + timeoutMs);
    }
    persistedDecision = status.decision;
    persisted = structuredClone(status);
  };

  const checkStep = (input: TransactionStatus | undefined, out: StepOutput, at: number) => {
    const st = out.status;
    expect(st.branches!.map((b) => b.name)).toEqual(names);
    if (input?.decision) expect(st.decision).toBe(input.decision);
    if (isTerminalSagaPhase(st.phase)) {
      expect(out.calls).toEqual([]);
      expect(out.requeueAfterMs).toBeUndefined();
    }
    if (st.phase === 'Completed') expect(st.decision).toBeUndefined();
    if (st.phase === 'Failed') expect(maxAttempts).toBeGreaterThan(0);
    for (const e of out.events) expect(['Decided', 'Completed', 'Compensated', 'CallFailed', 'RetryBudgetExhausted']).toContain(e.reason);
    for (const c of out.calls) {
      const before = input?.branches?.find((b) => b.name === c.branch)?.nextAttemptTime;
      if (before && input?.decision === st.decision) expect(at).toBeGreaterThanOrEqual(Date.parse(before));
      expect(c.attempt).toBe(st.branches!.find((b) => b.name === c.branch)!.attempts);
      if (c.method === 'Execute') {
        expect(st.decision).toBeUndefined();
        // Counted from status.startTime: never before creation, at most creationTimestamp's second later.
        expect(Date.parse(st.startTime!)).toBeLessThanOrEqual(T0 + 1000);
        expect(at).toBeLessThan(Date.parse(st.startTime!) + timeoutMs);
      } else {
        expect(c.method).toBe('Compensate');
        expect(st.decision).toBe('Compensate');
      }
      expect(out.persistBeforeCalls || c.method === 'Execute').toBe(true);
    }
  };

  const makeCall = (c: { branch: string; method: string; attempt: number; result?: string }): CallOutcome => {
    const a = answers.shift() ?? { kind: 'ok', latencyMs: 10, effect: true };
    let kind = a.kind;
    if (c.method === 'Execute') {
      // Write-ahead: "attempted" is stored before any Execute, and never after the decision.
      expect(persisted?.branches?.find((b) => b.name === c.branch)?.state).toBe('Executing');
      expect(persisted?.decision).toBeUndefined();
      // Dependencies first: every dependency's Execute answered OK.
      for (const d of depsOf.get(c.branch)!) expect(executeOkSeen.has(d)).toBe(true);
      executeCalled.add(c.branch);
      const w = world.get(c.branch)!;
      if (w === 'none') {
        if (kind === 'ok' || ((kind === 'retryable' || kind === 'timeout') && a.effect)) world.set(c.branch, 'executed');
        if (kind === 'refused') world.set(c.branch, 'refused');
      } else if (kind === 'ok' || kind === 'refused') {
        kind = w === 'executed' ? 'ok' : 'refused'; // idempotent: the same answer as the first time
      }
    } else {
      expect(persisted?.decision).toBe('Compensate');
      if (!compensateCalls.has(c.branch)) {
        // Reverse order: whatever depends on this branch and really executed was compensated (OK seen) first.
        for (const d of dependents(c.branch)) if (world.get(d) === 'executed') expect(compensateOkSeen.has(d)).toBe(true);
      }
      compensateCalls.set(c.branch, (compensateCalls.get(c.branch) ?? 0) + 1);
      if (c.result !== undefined) expect(c.result).toBe(b64(`res-${c.branch}`));
      if (kind === 'ok' || (kind !== 'refused' && a.effect)) compensated.add(c.branch);
    }
    const latency = kind === 'timeout' ? CALL_TIMEOUT_MS : a.latencyMs;
    const o: CallOutcome = { branch: c.branch, method: c.method as CallOutcome['method'], attempt: c.attempt, kind, finishedAt: now + latency };
    if (kind !== 'ok') o.message = `${kind} from ${c.branch}`;
    else if (c.method === 'Execute') o.data = b64(`res-${c.branch}`);
    return o;
  };

  let reconciles = 0;
  for (; reconciles < MAX_RECONCILES; reconciles++) {
    let status = persisted === undefined ? undefined : structuredClone(persisted);
    let outcomes: CallOutcome[] = [];
    let requeue: number | undefined;
    let crashed = false;
    for (let i = 0; ; i++) {
      const out = stepSaga({ tx, status, outcomes, now });
      steps++;
      checkStep(status, out, now);
      if (out.persistBeforeCalls) {
        if (crashHere()) {
          crashed = true;
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
      const fresh = out.calls.map(makeCall);
      now = Math.max(now, ...fresh.map((o) => o.finishedAt));
      if (crashHere()) {
        crashed = true; // calls made, answers lost
        break;
      }
      // Old answers (from earlier steps or a crashed run), before or after the fresh ones.
      outcomes = withStale(fresh, stale.shift(), history);
      for (const o of outcomes) {
        if (o.method === 'Execute' && o.kind === 'ok') executeOkSeen.add(o.branch);
        if (o.method === 'Execute' && o.kind === 'refused') refusedSeen.add(o.branch);
        if (o.method === 'Compensate' && o.kind === 'ok') compensateOkSeen.add(o.branch);
      }
      history.push(...fresh);
      status = out.status;
    }
    if (persisted && isTerminalSagaPhase(persisted.phase)) break;
    if (crashed) {
      now += 1_000;
      continue;
    }
    expect(requeue).toBeDefined();
    const w = wakeups.shift();
    now += w !== undefined && w < 0.5 ? Math.floor(requeue! * w) : requeue!;
  }

  const final = persisted!;
  expect(isTerminalSagaPhase(final.phase)).toBe(true);
  const executed = new Set(names.filter((n) => world.get(n) === 'executed'));
  if (final.phase === 'Completed') {
    expect(executed.size).toBe(names.length);
    expect(compensateCalls.size).toBe(0);
  }
  // Every Execute that may have happened (really did, here) is compensated.
  if (final.phase === 'Compensated') for (const n of executed) expect(compensated.has(n)).toBe(true);
  return { final, executed, compensated, executeCalled, compensateCalls, reconciles, steps };
}

describe('Saga engine under a simulated controller (property)', () => {
  it('is safe and live over random DAGs whatever the participants answer, with crashes and stale outcomes', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { final, compensateCalls, reconciles } = simulate(sc);
        const max = sc.retry.maxAttempts ?? 0;
        if (max > 0) for (const n of compensateCalls.values()) expect(n).toBeLessThanOrEqual(max);
        else expect(final.phase === 'Completed' || final.phase === 'Compensated').toBe(true);
        if (final.phase === 'Compensated' || final.phase === 'Failed') expect(final.decision).toBe('Compensate');
        expect(reconciles).toBeLessThan(sc.answers.length + sc.crashes.length + sc.wakeups.length + 60);
      }),
      { numRuns: 600 },
    );
  }, 60_000);

  it('completes when every participant eventually says yes, crashes or not', () => {
    fc.assert(
      fc.property(dag, fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 40 }), (g, crashes) => {
        const { final, compensateCalls } = simulate({ ...g, timeout: '2m', retry: {}, answers: [], crashes, wakeups: [], stale: [] });
        expect(final.phase).toBe('Completed');
        expect(compensateCalls.size).toBe(0);
      }),
      { numRuns: 200 },
    );
  }, 60_000);

  it('without failures a saga costs one Execute per branch, in one reconcile', () => {
    fc.assert(
      fc.property(dag, (g) => {
        const { final, executeCalled, reconciles } = simulate({ ...g, timeout: '30s', retry: {}, answers: [], crashes: [], wakeups: [], stale: [] });
        expect(final.phase).toBe('Completed');
        expect(reconciles).toBe(0);
        expect(executeCalled.size).toBe(g.deps.length);
      }),
    );
  }, 60_000);

  it('is deterministic and never throws on arbitrary status and outcomes', () => {
    fc.assert(
      fc.property(dag, fc.anything(), fc.anything(), fc.integer({ min: T0 - 1e9, max: T0 + 1e9 }), (g, status, outcomes, now) => {
        const tx = sagaTx(Object.fromEntries(g.deps.map((ds, i) => [`b${i}`, ds.map((j) => `b${j}`)])));
        const input = { tx, status: status as TransactionStatus, outcomes: outcomes as CallOutcome[], now };
        expect(stepSaga(input)).toEqual(stepSaga(input));
      }),
      { numRuns: 300 },
    );
  }, 60_000);
});

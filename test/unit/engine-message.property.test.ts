/**
 * Property tests: a simulated controller drives the Message engine. The
 * upstream either committed or rolled back its local transaction (the truth),
 * and may or may not get round to setting spec.message.decision (it may crash
 * in between). The source answers check-backs truthfully, or UNKNOWN, or
 * fails; receivers answer at random; the controller crashes, wakes early, and
 * re-delivers stale outcomes. Every call made in the run is recorded and checked.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTerminalMessagePhase, makeStepMessage, SOURCE_BRANCH } from '../../src/engine/message.js';
import type { Decision, DistributedTransaction, RetryPolicy, TransactionStatus } from '../../src/api/types.js';
import type { Call, CallOutcome, OutcomeKind, Step } from '../../src/engine/types.js';
import { T0, makeTx, withStale } from './engine-helpers.js';

const CALL_TIMEOUT_MS = 5_000;
const MAX_STEPS_PER_RECONCILE = 50;
const MAX_RECONCILES = 2_000;

type SourceAnswer = 'truth' | 'UNKNOWN' | 'retryable' | 'timeout';

interface Scenario {
  branches: number;
  timeout: string;
  checkAfter: string;
  retry: RetryPolicy;
  truth: 'commit' | 'rollback';
  /** ms after creation at which the upstream sets spec.message.decision; null = it crashed first and never does. */
  decisionAt: number | null;
  startDelayMs: number;
  /** Consumed per CheckPrepared; once empty, the source answers the truth. */
  source: Array<{ answer: SourceAnswer; latencyMs: number }>;
  /** Consumed per Deliver; once empty every Deliver answers ok. */
  deliveries: Array<{ kind: OutcomeKind; latencyMs: number }>;
  crashes: number[];
  wakeups: number[];
  stale: number[];
  onCheckTimeout: 'Rollback' | 'Fail';
}

const ms = (d: string) => ({ '1s': 1_000, '2s': 2_000, '3s': 3_000, '10s': 10_000, '30s': 30_000, '2m': 120_000 })[d]!;

const scenario: fc.Arbitrary<Scenario> = fc.record({
  branches: fc.integer({ min: 1, max: 6 }),
  timeout: fc.constantFrom('3s', '10s', '30s', '2m'),
  checkAfter: fc.constantFrom('1s', '2s', '10s'),
  retry: fc.record(
    {
      initialInterval: fc.constantFrom('0s', '100ms', '1s', '3s'),
      maxInterval: fc.constantFrom('500ms', '10s', '5m'),
      multiplier: fc.constantFrom(1, 2, 3),
      maxAttempts: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 }),
    },
    { requiredKeys: [] },
  ),
  truth: fc.constantFrom<'commit' | 'rollback'>('commit', 'rollback'),
  decisionAt: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 60_000 })),
  startDelayMs: fc.integer({ min: 0, max: 3_000 }),
  source: fc.array(
    fc.record({
      answer: fc.constantFrom<SourceAnswer>('truth', 'UNKNOWN', 'UNKNOWN', 'retryable', 'timeout'),
      latencyMs: fc.integer({ min: 0, max: CALL_TIMEOUT_MS }),
    }),
    { maxLength: 20 },
  ),
  deliveries: fc.array(
    fc.record({
      kind: fc.constantFrom<OutcomeKind>('ok', 'ok', 'retryable', 'timeout', 'refused'),
      latencyMs: fc.integer({ min: 0, max: CALL_TIMEOUT_MS }),
    }),
    { maxLength: 40 },
  ),
  crashes: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 60 }),
  wakeups: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
  stale: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 30 }),
  onCheckTimeout: fc.constantFrom<'Rollback' | 'Fail'>('Rollback', 'Rollback', 'Fail'),
});

interface CallRecord extends Call {
  at: number;
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `b${i}`);

function simulate(sc: Scenario) {
  const branchNames = names(sc.branches);
  const base = makeTx(branchNames, { mode: 'Message', timeout: sc.timeout, retry: sc.retry, uid: `uid-${sc.branches}-${sc.source.length}` });
  base.spec.message = { source: { endpoint: { service: { name: 'order', port: 50051 } } }, checkAfter: sc.checkAfter };
  const decided: DistributedTransaction = structuredClone(base);
  decided.spec.message!.decision = sc.truth === 'commit' ? 'Commit' : 'Rollback';
  decided.metadata.generation = 2;
  const decisionAt = sc.decisionAt === null ? undefined : T0 + sc.decisionAt;
  const txAt = (now: number) => (decisionAt !== undefined && now >= decisionAt ? decided : base);
  const stepMessage: Step = makeStepMessage({ onCheckTimeout: sc.onCheckTimeout });
  const deadline = T0 + ms(sc.checkAfter) + ms(sc.timeout);
  const maxAttempts = sc.retry.maxAttempts ?? 0;

  const source = [...sc.source];
  const deliveries = [...sc.deliveries];
  const crashes = [...sc.crashes];
  const wakeups = [...sc.wakeups];
  const stale = [...sc.stale];
  const crashHere = () => crashes.shift() === 0;

  let now = T0 + sc.startDelayMs;
  let persisted: TransactionStatus | undefined;
  let persistedDecision: Decision | undefined;
  const calls: CallRecord[] = [];
  const history: CallOutcome[] = [];
  /** Evidence of a commit the engine has seen: the spec decision in a tx it stepped on, or a COMMITTED answer it was given. */
  let commitSeen = false;
  const delivered = new Set<string>();

  const persist = (status: TransactionStatus) => {
    if (persistedDecision !== undefined) expect(status.decision).toBe(persistedDecision);
    if (status.decision === 'Deliver') expect(commitSeen).toBe(true);
    persistedDecision = status.decision;
    persisted = structuredClone(status);
  };

  let reconciles = 0;
  for (; reconciles < MAX_RECONCILES; reconciles++) {
    const tx = txAt(now);
    if (tx === decided && sc.truth === 'commit') commitSeen = true;
    let status = persisted === undefined ? undefined : structuredClone(persisted);
    let outcomes: CallOutcome[] = [];
    let requeue: number | undefined;
    let crashed = false;
    for (let i = 0; ; i++) {
      const out = stepMessage({ tx, status, outcomes, now });
      const st = out.status;
      expect(st.branches!.map((b) => b.name)).toEqual(branchNames);
      if (status?.decision) expect(st.decision).toBe(status.decision);
      if (isTerminalMessagePhase(st.phase)) expect(out.calls).toEqual([]);
      for (const c of out.calls) {
        if (c.method === 'Deliver') {
          expect(st.decision).toBe('Deliver');
          expect(out.persistBeforeCalls).toBe(true);
        } else {
          expect(c.method).toBe('CheckPrepared');
          expect(c.branch).toBe(SOURCE_BRANCH);
          expect(st.decision).toBeUndefined();
          // Counted from status.startTime: never before creation, at most creationTimestamp's second later.
          const start = Date.parse(st.startTime!);
          expect(start).toBeGreaterThanOrEqual(T0);
          expect(start).toBeLessThanOrEqual(T0 + 1000);
          expect(now).toBeGreaterThanOrEqual(start + ms(sc.checkAfter));
          expect(now).toBeLessThan(start - T0 + deadline);
          const before = status?.check?.nextAttemptTime;
          if (before) expect(now).toBeGreaterThanOrEqual(Date.parse(before));
        }
      }
      if (out.persistBeforeCalls) {
        if (crashHere()) {
          crashed = true;
          break;
        }
        persist(st);
      }
      if (out.calls.length === 0 || i === MAX_STEPS_PER_RECONCILE) {
        persist(st);
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
        if (c.method === 'Deliver') {
          // Write-ahead, and never without evidence of a commit.
          expect(persisted?.decision).toBe('Deliver');
          expect(sc.truth).toBe('commit');
          const a = deliveries.shift() ?? { kind: 'ok' as OutcomeKind, latencyMs: 10 };
          const latency = a.kind === 'timeout' ? CALL_TIMEOUT_MS : a.latencyMs;
          fresh.push({ branch: c.branch, method: c.method, attempt: c.attempt, kind: a.kind, finishedAt: now + latency, ...(a.kind === 'ok' ? {} : { message: `${a.kind}` }) });
        } else {
          const a = source.shift() ?? { answer: 'truth' as SourceAnswer, latencyMs: 10 };
          const o: CallOutcome = { branch: c.branch, method: c.method, attempt: c.attempt, kind: 'ok', finishedAt: now + a.latencyMs };
          if (a.answer === 'truth') o.checkState = sc.truth === 'commit' ? 'COMMITTED' : 'ROLLED_BACK';
          else if (a.answer === 'UNKNOWN') o.checkState = 'UNKNOWN';
          else {
            o.kind = a.answer;
            o.message = a.answer;
            if (a.answer === 'timeout') o.finishedAt = now + CALL_TIMEOUT_MS;
          }
          fresh.push(o);
        }
      }
      now = Math.max(now, ...fresh.map((o) => o.finishedAt));
      if (crashHere()) {
        crashed = true;
        break;
      }
      // Old answers (from earlier steps or a crashed run), before or after the fresh ones.
      outcomes = withStale(fresh, stale.shift(), history);
      for (const o of outcomes) {
        if (o.method === 'CheckPrepared' && o.checkState === 'COMMITTED') commitSeen = true;
        if (o.method === 'Deliver' && o.kind === 'ok') delivered.add(o.branch);
      }
      history.push(...fresh);
      status = st;
    }
    if (persisted && (persisted.phase === 'Delivered' || persisted.phase === 'RolledBack')) break;
    if (persisted?.phase === 'Failed' && !(persisted.decision === undefined && decisionAt !== undefined)) break;
    if (crashed) {
      now += 1_000;
      continue;
    }
    // A live message always says when to look again, except a Failed one waiting for a human (or the upstream).
    if (persisted?.phase !== 'Failed') expect(requeue).toBeDefined();
    const w = wakeups.shift();
    let next = now + (requeue === undefined ? 60_000 : w !== undefined && w < 0.5 ? Math.floor(requeue * w) : requeue);
    // The spec changing wakes the controller (the informer sees the update).
    if (decisionAt !== undefined && now < decisionAt && decisionAt < next) next = decisionAt;
    now = next;
  }
  expect(reconciles).toBeLessThan(MAX_RECONCILES);
  const final = persisted!;
  if (final.phase === 'Delivered') for (const n of branchNames) expect(delivered.has(n)).toBe(true);
  if (final.phase === 'Failed') {
    expect(maxAttempts > 0 || (sc.onCheckTimeout === 'Fail' && final.decision === undefined)).toBe(true);
  }
  return { final, calls };
}

describe('Message engine under a simulated controller (property)', () => {
  it('never delivers without a Commit decision or a COMMITTED answer, nor after a rollback; decision persisted before any Deliver', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { final, calls } = simulate(sc);
        const delivers = calls.filter((c) => c.method === 'Deliver');
        if (sc.truth === 'rollback') expect(delivers).toEqual([]);
        if (final.phase === 'RolledBack') {
          expect(delivers).toEqual([]);
          expect(final.decision).toBe('Rollback');
        }
        if (delivers.length > 0) expect(final.decision).toBe('Deliver');
        // Checks only before any decision: none after the first Deliver.
        const firstDeliver = calls.findIndex((c) => c.method === 'Deliver');
        if (firstDeliver >= 0) expect(calls.slice(firstDeliver).some((c) => c.method === 'CheckPrepared')).toBe(false);
        const max = sc.retry.maxAttempts ?? 0;
        if (max > 0) {
          for (const n of names(sc.branches)) expect(delivers.filter((c) => c.branch === n).length).toBeLessThanOrEqual(max);
        }
        // The status stays bounded: one check record, one entry per branch.
        expect(JSON.stringify(final).length).toBeLessThan(4_000 + 600 * sc.branches);
      }),
      { numRuns: 500 },
    );
  }, 60_000);

  it('delivers to every branch when the upstream committed and someone says so in time, receivers eventually answering', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 20_000 })),
        fc.array(fc.constantFrom<SourceAnswer>('UNKNOWN', 'retryable', 'timeout'), { maxLength: 3 }),
        fc.array(fc.constantFrom<OutcomeKind>('retryable', 'timeout', 'refused', 'ok'), { maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 40 }),
        (branches, decisionAt, sourceFailures, deliveryKinds, crashes) => {
          const { final, calls } = simulate({
            branches,
            timeout: '2m',
            checkAfter: '2s',
            retry: { initialInterval: '100ms', maxInterval: '1s' },
            truth: 'commit',
            decisionAt,
            startDelayMs: 0,
            source: sourceFailures.map((answer) => ({ answer, latencyMs: 20 })),
            deliveries: deliveryKinds.map((kind) => ({ kind, latencyMs: 20 })),
            crashes,
            wakeups: [],
            stale: [],
            onCheckTimeout: 'Rollback',
          });
          expect(final.phase).toBe('Delivered');
          expect(final.branches!.every((b) => b.state === 'Delivered')).toBe(true);
          if (decisionAt === null) expect(calls.some((c) => c.method === 'CheckPrepared')).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);

  it('a clean commit costs one Deliver per branch and no check-back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 9_000 }), (branches, decisionAt) => {
        const { final, calls } = simulate({
          branches,
          timeout: '30s',
          checkAfter: '10s',
          retry: {},
          truth: 'commit',
          decisionAt,
          startDelayMs: 0,
          source: [],
          deliveries: [],
          crashes: [],
          wakeups: [],
          stale: [],
          onCheckTimeout: 'Rollback',
        });
        expect(final.phase).toBe('Delivered');
        expect(calls.filter((c) => c.method === 'CheckPrepared')).toEqual([]);
        expect(calls.filter((c) => c.method === 'Deliver')).toHaveLength(branches);
      }),
      { numRuns: 100 },
    );
  }, 60_000);

  it('is deterministic and never throws on arbitrary status and outcomes', () => {
    const step = makeStepMessage();
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.integer({ min: T0 - 1e9, max: T0 + 1e9 }), fc.constantFrom('', 'Commit', 'Rollback', 'x'), (status, outcomes, now, decision) => {
        const tx = makeTx(['a', 'b'], { mode: 'Message' });
        tx.spec.message = { source: { endpoint: { service: { name: 's', port: 1 } } }, decision: decision as 'Commit' };
        const input = { tx, status: status as TransactionStatus, outcomes: outcomes as CallOutcome[], now };
        expect(step(input)).toEqual(step(input));
      }),
      { numRuns: 300 },
    );
  }, 60_000);
});

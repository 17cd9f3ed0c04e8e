/**
 * The Stalled condition: a transaction whose calls keep failing in a phase
 * that must eventually succeed (Confirming, Cancelling, Compensating,
 * Delivering, Notifying) says so, instead of retrying silently forever.
 *
 *   Stalled=True   some branch failed `afterAttempts` consecutive calls, or has
 *                  been failing for `afterMs` since the phase began, or failed
 *                  with an error that no retry fixes as the endpoint stands
 *                  (EndpointMisconfigured, INVALID_ARGUMENT): at once.
 *                  lastTransitionTime is "since when"; the message names the
 *                  branch, the method, the count and the last error, and what to fix.
 *   Stalled=False  once no branch is failing any more (reason Progressing), or
 *                  the transaction finished (reason: its phase). Added only
 *                  after a Stalled=True, so healthy transactions carry no
 *                  extra condition.
 *
 * The operator keeps retrying either way: Stalled is for humans and alerts.
 * Pure, like the rest of the engine; it runs after every mode's step.
 */
import type { BranchStatus, Condition, TransactionStatus } from '../api/types.js';
import { getCondition, setCondition } from './conditions.js';
import { iso, parseTime, truncate } from './text.js';
import type { EventIntent, Method, StepInput, StepOutput } from './types.js';

export interface StallOptions {
  /** Consecutive failed calls of one branch that make the transaction Stalled. @default 5 */
  afterAttempts?: number;
  /** A branch failing this long after the phase began makes it Stalled. @default 600_000 (10 m) */
  afterMs?: number;
}

export const DEFAULT_STALL_AFTER_ATTEMPTS = 5;
export const DEFAULT_STALL_AFTER_MS = 10 * 60_000;
export const STALLED = 'Stalled';

/** Phases in which a failing call is retried until it succeeds, and the method each calls. */
const MUST_SUCCEED: Record<string, Method> = {
  Confirming: 'Confirm',
  Cancelling: 'Cancel',
  Compensating: 'Compensate',
  Delivering: 'Deliver',
  Notifying: 'Deliver',
};

/** Branch states after which nothing is called on the branch in the current phase. */
const SETTLED: ReadonlySet<string> = new Set(['Refused', 'Confirmed', 'Cancelled', 'Compensated', 'Delivered', 'Exhausted']);

/**
 * Errors no retry fixes until someone changes the participant or its endpoint (src/participants/classify.ts
 * writes them), or the broker's configuration (BrokerRejected: src/participants/broker-delivery.ts).
 */
const PERMANENT = /^(EndpointMisconfigured|INVALID_ARGUMENT|BrokerRejected)\b/;
const PERMANENT_REASONS: Record<string, string> = { EndpointMisconfigured: 'EndpointMisconfigured', INVALID_ARGUMENT: 'InvalidArgument', BrokerRejected: 'BrokerRejected' };

interface Failing {
  branch: BranchStatus;
  failures: number;
  permanent: boolean;
}

export function withStalled(input: StepInput, out: StepOutput, options: StallOptions = {}): StepOutput {
  const status = out.status;
  const prevStalled = getCondition(input.status?.conditions, STALLED);
  const wasStalled = prevStalled?.status === 'True';
  const method = MUST_SUCCEED[status.phase ?? ''];
  const now = input.now;

  if (!method) {
    if (!wasStalled) return out;
    const reason = status.phase || 'Progressing';
    return withCondition(out, { status: 'False', reason, message: `no longer stalled: the transaction is ${reason}` }, now);
  }

  const failing = failingBranches(status);
  const afterAttempts = positive(options.afterAttempts, DEFAULT_STALL_AFTER_ATTEMPTS);
  const afterMs = positive(options.afterMs, DEFAULT_STALL_AFTER_MS);
  const since = parseTime(status.decisionTime) ?? parseTime(status.startTime) ?? now;
  const stalled = failing.filter((f) => (f.permanent && f.failures > 0) || f.failures >= afterAttempts || (f.failures > 0 && now - since >= afterMs));

  if (stalled.length === 0 && !(wasStalled && failing.length > 0)) {
    if (!wasStalled) return out;
    const resumed = withCondition(out, { status: 'False', reason: 'Progressing', message: `${method} calls succeed again` }, now);
    resumed.events = [...resumed.events, { type: 'Normal', reason: 'Resumed', message: `no longer stalled: ${method} calls succeed again` }];
    return resumed;
  }

  const worst = (stalled.length > 0 ? stalled : failing)[0]!;
  const reason = worst.permanent ? (PERMANENT_REASONS[PERMANENT.exec(worst.branch.lastError!)![1]!] ?? 'EndpointMisconfigured') : 'CallsFailing';
  const startedAt = wasStalled ? prevStalled.lastTransitionTime : iso(now);
  const message = stallMessage(worst, failing.length, method, iso(since));
  const next = withCondition(out, { status: 'True', reason, message }, now, startedAt);
  if (!wasStalled || prevStalled.reason !== reason) {
    const event: EventIntent = { type: 'Warning', reason: STALLED, message, branch: worst.branch.name, method };
    next.events = [...next.events, event];
  }
  return next;
}

function failingBranches(status: TransactionStatus): Failing[] {
  const out: Failing[] = [];
  for (const b of Array.isArray(status.branches) ? status.branches : []) {
    if (!b || typeof b.lastError !== 'string' || SETTLED.has(b.state)) continue;
    // The last call failed if a retry is scheduled; one in flight has not failed (yet).
    const failures = Math.max(0, b.nextAttemptTime !== undefined ? b.attempts : b.attempts - 1);
    out.push({ branch: b, failures, permanent: PERMANENT.test(b.lastError) });
  }
  // Permanent errors first, then the most failures: the message names the branch most worth fixing.
  return out.sort((x, y) => Number(y.permanent) - Number(x.permanent) || y.failures - x.failures);
}

function stallMessage(f: Failing, failingCount: number, method: Method, since: string): string {
  const others = failingCount > 1 ? ` (${failingCount - 1} other branch(es) failing too)` : '';
  const broker = /^Broker(Rejected|Unavailable)\b/.test(f.branch.lastError ?? '');
  const fix = broker
    ? f.permanent
      ? 'fix spec.branches[].broker or the broker (a JetStream stream must capture the subject); kubetx keeps retrying'
      : 'kubetx keeps retrying; check that NATS (and, failed over, Redis) is up: kubectl dtx broker status'
    : f.permanent
      ? 'fix the participant or spec.branches[].endpoint; kubetx keeps retrying'
      : 'kubetx keeps retrying; check that the participant is up and reachable';
  const times = f.failures === 1 ? '1 time' : `${f.failures} times`;
  return truncate(`branch ${f.branch.name}: ${method} failed ${times} since ${since}${others}: ${f.branch.lastError}; ${fix}`);
}

function withCondition(out: StepOutput, c: Pick<Condition, 'status' | 'reason' | 'message'>, now: number, lastTransitionTime?: string): StepOutput {
  const conditions = setCondition(out.status.conditions, { type: STALLED, ...c, ...(lastTransitionTime ? { lastTransitionTime } : {}) }, now);
  return { ...out, status: { ...out.status, conditions } };
}

function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

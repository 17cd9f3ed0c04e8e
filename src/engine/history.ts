/**
 * Per-branch call history: the last MAX_HISTORY answers a branch's calls got,
 * kept in status.branches[].history for `kubectl dtx show`.
 *
 * `failures` (the operator's default, --call-history) starts a branch's history
 * at its first answer that was not ok and records every answer from then on; a
 * branch whose calls all succeeded carries none, its state and attempts and the
 * transaction's startTime/decisionTime/completionTime telling what happened.
 * Two ok records per branch were a third of a committed status's bytes and cost
 * the API server on every status write (bench/RESULTS.md, rules). `all`
 * records every answer.
 *
 * Computed from the outcomes a step was given (no clock: times are the
 * controller's finishedAt), only for an outcome that answers the call the
 * stored status has in flight, and only on a branch the step changed anyway:
 * recording an outcome the mode ignored as stale would turn a step that
 * changes nothing into a status write. So the history never adds a write; it
 * rides on the ones the mode makes.
 */
import type { BranchStatus, CallRecord, TransactionStatus } from '../api/types.js';
import { dedupeOutcomes } from './common.js';
import { iso, truncate, validTime } from './text.js';
import type { CallOutcome, StepInput, StepOutput } from './types.js';

/** Records kept per branch (the CRD's maxItems). */
export const MAX_HISTORY = 10;
/** Bound on a record's message (the CRD's maxLength). */
export const MAX_HISTORY_MESSAGE = 256;

/** Which answers go into status.branches[].history. */
export type CallHistory = 'all' | 'failures';
export const CALL_HISTORY_LEVELS: readonly CallHistory[] = ['failures', 'all'];
/** The operator's default (--call-history) and the engine's. */
export const DEFAULT_CALL_HISTORY: CallHistory = 'failures';

/** The step's output with each changed branch's history extended by the outcomes about it. */
export function withHistory(input: StepInput, out: StepOutput, level: CallHistory): StepOutput {
  const branches = out.status?.branches;
  if (!Array.isArray(branches)) return out;
  const prevStatus: TransactionStatus = input.status && typeof input.status === 'object' ? input.status : {};
  const previous = new Map<string, BranchStatus>();
  for (const b of Array.isArray(prevStatus.branches) ? prevStatus.branches : []) {
    if (b && typeof b === 'object' && typeof b.name === 'string' && !previous.has(b.name)) previous.set(b.name, b);
  }
  const outcomes = dedupeOutcomes(input.outcomes);
  const next = branches.map((b) => {
    const prev = previous.get(b.name);
    const fresh = prev && !sameBranch(prev, b) ? outcomes.filter((o) => o.branch === b.name && answersCallInFlight(prev, o)) : [];
    const kept = normalizeHistory(prev?.history);
    const records = fresh.sort((x, y) => x.finishedAt - y.finishedAt).map(record);
    // Under `failures` a branch without history starts one at its first answer that was not ok.
    const from = level === 'all' || kept.length > 0 ? 0 : records.findIndex((r) => r.outcome !== 'ok');
    const history = boundHistory(from < 0 ? kept : [...kept, ...records.slice(from)]);
    const { history: _old, ...rest } = b;
    return history.length > 0 ? { ...rest, history } : rest;
  });
  return { ...out, status: { ...out.status, branches: next } };
}

/** One record from one outcome, with bounded text. */
export function record(o: CallOutcome): CallRecord {
  const r: CallRecord = {
    attempt: Number.isInteger(o.attempt) && o.attempt > 0 ? o.attempt : 0,
    method: String(o.method),
    time: iso(typeof o.finishedAt === 'number' && Number.isFinite(o.finishedAt) ? o.finishedAt : 0),
    outcome: String(o.kind),
  };
  if (typeof o.reason === 'string') r.code = o.reason;
  // An answer's text is kept for the calls that did not succeed: for an OK the branch's own message
  // already holds the latest, and repeating it in every record would double a committed status's bytes.
  if (o.kind !== 'ok' && typeof o.message === 'string' && o.message !== '') r.message = truncate(o.message, MAX_HISTORY_MESSAGE);
  return r;
}

/** The last MAX_HISTORY records. */
export function boundHistory(records: CallRecord[]): CallRecord[] {
  return records.slice(-MAX_HISTORY);
}

/** Only well-formed records of a stored history (a hand-edited status may hold anything). */
export function normalizeHistory(raw: unknown): CallRecord[] {
  if (!Array.isArray(raw)) return [];
  const out: CallRecord[] = [];
  for (const r of raw as Record<string, unknown>[]) {
    if (!r || typeof r !== 'object') continue;
    const time = validTime(r.time);
    if (typeof r.attempt !== 'number' || !Number.isInteger(r.attempt) || r.attempt < 0 || typeof r.method !== 'string' || !time || typeof r.outcome !== 'string') continue;
    const c: CallRecord = { attempt: r.attempt, method: truncate(r.method, 16), time, outcome: truncate(r.outcome, 16) };
    if (typeof r.code === 'string') c.code = truncate(r.code, 64);
    if (typeof r.message === 'string') c.message = truncate(r.message, MAX_HISTORY_MESSAGE);
    out.push(c);
  }
  return boundHistory(out);
}

/** The state a branch is in while a call of that method waits for its answer. */
const IN_FLIGHT: Record<string, string> = {
  Trying: 'Try',
  Confirming: 'Confirm',
  Cancelling: 'Cancel',
  Executing: 'Execute',
  Compensating: 'Compensate',
  Delivering: 'Deliver',
};

/** The outcome answers the call the stored status has in flight (the rule every mode applies; anything else is stale). */
function answersCallInFlight(prev: BranchStatus, o: CallOutcome): boolean {
  return IN_FLIGHT[prev.state] === o.method && o.attempt === prev.attempts && prev.attempts > 0 && prev.nextAttemptTime === undefined;
}

/** Equal apart from the history, whatever the key order. */
function sameBranch(a: BranchStatus, b: BranchStatus): boolean {
  const { history: _a, ...ra } = a;
  const { history: _b, ...rb } = b;
  return stable(ra) === stable(rb);
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

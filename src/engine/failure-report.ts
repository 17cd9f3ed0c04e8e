/**
 * What the status says about failures, the same for every mode (it runs after
 * each mode's step):
 *
 *  - while Trying, Executing or Notifying (and while a Message waits for its
 *    check-back), status.message and the Succeeded condition's message carry
 *    the latest failure, "waiting on ledger: UNAVAILABLE: …", so
 *    `kubectl get dtx -w` shows why a transaction waits;
 *  - a Failed transaction schedules nothing: no nextAttemptTime is left
 *    standing (nothing will be attempted until a human acts);
 *  - a transaction that just failed because a retry budget was spent says how
 *    to resume it: `kubectl dtx retry NAME -n NAMESPACE`.
 */
import type { DistributedTransaction, TransactionStatus } from '../api/types.js';
import { setCondition } from './conditions.js';
import { parseTime, truncate } from './text.js';
import type { StepInput, StepOutput } from './types.js';

const FORWARD: ReadonlySet<string> = new Set(['Trying', 'Executing', 'Notifying']);
const SETTLED: ReadonlySet<string> = new Set(['Prepared', 'Refused', 'Executed', 'Delivered', 'Exhausted']);

export function withFailureReport(input: StepInput, out: StepOutput): StepOutput {
  const s: TransactionStatus = { ...out.status };
  let events = out.events;
  const waiting = waitingOn(s);
  if (waiting) setMessage(s, waiting, input.now);
  if (s.phase === 'Failed') {
    if (Array.isArray(s.branches)) s.branches = s.branches.map(({ nextAttemptTime: _, ...b }) => b);
    if (s.check?.nextAttemptTime !== undefined) {
      const { nextAttemptTime: _, ...check } = s.check;
      s.check = check;
    }
    const exhausted = events.some((e) => e.reason === 'RetryBudgetExhausted');
    if (exhausted && input.status?.phase !== 'Failed') {
      const hint = resumeHint(input.tx);
      setMessage(s, `${s.message ?? 'retry budget spent'}; ${hint}`, input.now);
      events = events.map((e) => (e.reason === 'RetryBudgetExhausted' ? { ...e, message: truncate(`${e.message}; ${hint}`) } : e));
    }
  }
  return { ...out, status: s, events };
}

export function resumeHint(tx: DistributedTransaction | undefined): string {
  const name = tx?.metadata?.name ?? 'NAME';
  const ns = tx?.metadata?.namespace ?? 'NAMESPACE';
  return `fix the cause, then resume with: kubectl dtx retry ${name} -n ${ns}`;
}

/** The latest failure of a forward phase, or undefined when nothing is failing. */
function waitingOn(s: TransactionStatus): string | undefined {
  if (s.phase === 'Prepared' && s.check?.lastError) return `waiting on the message source: ${s.check.lastError}`;
  if (!FORWARD.has(s.phase ?? '') || !Array.isArray(s.branches)) return undefined;
  let latest: { name: string; error: string; at: number } | undefined;
  for (const b of s.branches) {
    if (!b || typeof b.lastError !== 'string' || SETTLED.has(b.state)) continue;
    const at = parseTime(b.lastAttemptTime) ?? 0;
    if (!latest || at > latest.at) latest = { name: b.name, error: b.lastError, at };
  }
  return latest ? `waiting on ${latest.name}: ${latest.error}` : undefined;
}

function setMessage(s: TransactionStatus, message: string, now: number): void {
  s.message = truncate(message);
  const succeeded = s.conditions?.find((c) => c.type === 'Succeeded');
  if (succeeded) s.conditions = setCondition(s.conditions, { ...succeeded, message: s.message }, now);
}

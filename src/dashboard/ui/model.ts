/**
 * What the dashboard computes from transactions, apart from any DOM: the
 * filters, "needs attention", counts per phase, and decoding branch results.
 * (Type-checked with the operator's own tsconfig too: no DOM types here.)
 */
import type { BranchStatus, DistributedTransaction } from '../../api/types.js';

export type Tx = DistributedTransaction;

export const TERMINAL = new Set(['Committed', 'Aborted', 'Completed', 'Compensated', 'Delivered', 'RolledBack', 'Exhausted', 'Failed']);
/** A branch with this many attempts of its current method counts as "retries piling up". */
export const MANY_ATTEMPTS = 5;

export interface Filters {
  namespace: string;
  mode: string;
  phase: string;
  /** Minutes; 0 = any age. Shows transactions at least this old. */
  minAgeMinutes: number;
  text: string;
}

export const noFilters: Filters = { namespace: '', mode: '', phase: '', minAgeMinutes: 0, text: '' };

export const key = (tx: Tx) => `${tx.metadata.namespace}/${tx.metadata.name}`;
export const phaseOf = (tx: Tx) => tx.status?.phase ?? 'Pending';

export function startedAt(tx: Tx): number {
  return Date.parse(tx.status?.startTime ?? tx.metadata.creationTimestamp ?? '') || 0;
}

export function matches(tx: Tx, f: Filters, now: number): boolean {
  if (f.namespace && tx.metadata.namespace !== f.namespace) return false;
  if (f.mode && tx.spec.mode !== f.mode) return false;
  if (f.phase && phaseOf(tx) !== f.phase) return false;
  if (f.minAgeMinutes > 0 && now - startedAt(tx) < f.minAgeMinutes * 60_000) return false;
  if (f.text) {
    const t = f.text.toLowerCase();
    const hay = [tx.metadata.name, tx.metadata.namespace, tx.status?.message ?? '', ...(tx.status?.branches ?? []).flatMap((b) => [b.name, b.lastError ?? ''])];
    if (!hay.some((h) => h.toLowerCase().includes(t))) return false;
  }
  return true;
}

/** Why a transaction needs a human, or [] if it does not. */
export function attentionReasons(tx: Tx, now: number, longRunningMinutes: number): string[] {
  const out: string[] = [];
  const phase = phaseOf(tx);
  if (phase === 'Failed') out.push('Failed');
  const stalled = tx.status?.conditions?.find((c) => c.type === 'Stalled' && c.status === 'True');
  if (stalled) out.push(`Stalled: ${stalled.reason}`);
  if (!TERMINAL.has(phase) && now - startedAt(tx) > longRunningMinutes * 60_000) out.push(`running > ${longRunningMinutes} min`);
  const piling = (tx.status?.branches ?? []).filter((b) => b.attempts >= MANY_ATTEMPTS);
  if (piling.length) out.push(`retries piling up: ${piling.map((b) => `${b.name} (${b.attempts})`).join(', ')}`);
  return out;
}

export function countByPhase(txs: Iterable<Tx>): Map<string, number> {
  const m = new Map<string, number>();
  for (const tx of txs) m.set(phaseOf(tx), (m.get(phaseOf(tx)) ?? 0) + 1);
  return m;
}

/** A base64 result decoded: pretty JSON when it is JSON, else the text, else the base64 itself. */
export function decodeResult(b64: string): { kind: 'json' | 'text' | 'binary'; text: string } {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return { kind: 'binary', text: b64 };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { kind: 'binary', text: b64 };
  }
  try {
    return { kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2) };
  } catch {
    return { kind: 'text', text };
  }
}

/**
 * The branch's per-call history when the operator records it (status.branches[].history: attempt,
 * method, time, outcome, code, message; `calls` in early drafts), as rows of plain fields.
 */
export function callsOf(b: BranchStatus): Array<Record<string, unknown>> | undefined {
  const raw = b as BranchStatus & { history?: unknown; calls?: unknown };
  const calls = raw.history ?? raw.calls;
  return Array.isArray(calls) ? calls.filter((c): c is Record<string, unknown> => !!c && typeof c === 'object') : undefined;
}

/** Columns of the call history: the known fields first, in this order, then any others. */
export function callColumns(calls: Array<Record<string, unknown>>): string[] {
  const known = ['attempt', 'method', 'time', 'outcome', 'code', 'message'];
  const seen = new Set(calls.flatMap((c) => Object.keys(c)));
  return [...known.filter((k) => seen.has(k)), ...[...seen].filter((k) => !known.includes(k))];
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

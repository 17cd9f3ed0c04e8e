/**
 * Which Events the operator records (--events). The status is the audit
 * trail: every phase, decision and attempt is in it. Events are for people
 * and tools that watch Events, and each one is an API write, so the happy
 * path's Events are opt-in:
 *
 *   warnings (default)  Warning Events (failures, rollbacks, escalations,
 *                       refusals, Stalled) and the Normal Events that answer
 *                       a person (RetryRequested, AbortRequested, Resumed,
 *                       Deleted). A committed transaction costs no Event.
 *   changes             also the Normal outcome of each transaction
 *                       (Committed, Completed, Delivered, RolledBack): one Event each.
 *   all                 also the Normal decisions (Decided: Confirm / Deliver).
 */
import type { DistributedTransaction } from '../api/types.js';
import type { EventIntent } from '../engine/types.js';
import type { EventSink } from './events.js';

export type EventLevel = 'all' | 'changes' | 'warnings';
export const EVENT_LEVELS: readonly EventLevel[] = ['all', 'changes', 'warnings'];

const OUTCOMES: ReadonlySet<string> = new Set(['Committed', 'Completed', 'Delivered', 'RolledBack']);

export function recorded(level: EventLevel, e: EventIntent): boolean {
  if (level === 'all' || e.type === 'Warning') return true;
  if (e.reason === 'Decided') return false;
  if (OUTCOMES.has(e.reason)) return level === 'changes';
  return true;
}

/** `sink` recording only the Events `level` asks for; `onSkipped` counts the others. */
export function withEventLevel(sink: EventSink, level: EventLevel, onSkipped: () => void = () => undefined): EventSink {
  if (level === 'all') return sink;
  return {
    record(tx: DistributedTransaction, intent: EventIntent): void {
      if (recorded(level, intent)) sink.record(tx, intent);
      else onSkipped();
    },
  };
}

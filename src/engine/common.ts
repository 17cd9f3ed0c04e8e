/** Pieces every mode's state machine uses alike. */
import type { TransactionStatus } from '../api/types.js';
import { truncate } from './text.js';
import type { EventIntent } from './types.js';

/** A deep copy to build the next status from; a status that cannot be cloned is used as is (the engine never mutates its input in place). */
export function clone(status: TransactionStatus): TransactionStatus {
  try {
    return structuredClone(status);
  } catch {
    return status;
  }
}

/** A Warning event with bounded text. */
export function warning(reason: string, message: string): EventIntent {
  return { type: 'Warning', reason, message: truncate(message) };
}

/** The mode's finishing phases: one success, the others not. */
export interface Outcomes {
  success: string;
  unsuccessful: readonly string[];
}

/**
 * The Succeeded condition's status and reason for a phase (docs/api-reference.md,
 * Conditions): True on the success phase; False on the others that end it, with
 * the phase as reason, or InvalidSpec when the spec was refused before any call;
 * Unknown while in progress.
 */
export function succeededFor(
  phase: string,
  outcomes: Outcomes,
  refusedSpec: boolean,
): { status: 'True' | 'False' | 'Unknown'; reason: string } {
  if (phase === outcomes.success) return { status: 'True', reason: phase };
  if (phase === 'Failed' && refusedSpec) return { status: 'False', reason: 'InvalidSpec' };
  if (phase === 'Failed' || outcomes.unsuccessful.includes(phase)) return { status: 'False', reason: phase };
  return { status: 'Unknown', reason: phase };
}

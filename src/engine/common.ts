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

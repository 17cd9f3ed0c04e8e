/**
 * Phases nothing can change any more, in every mode. Failed is not among
 * them: a human's kubetx.io/retry resumes it through the engine.
 */
export const finalPhases: ReadonlySet<string> = new Set(['Committed', 'Aborted', 'Completed', 'Compensated', 'Delivered', 'RolledBack', 'Exhausted']);

/** Where a transaction stops on its own (final, or Failed waiting for a human). */
export const terminalPhases: ReadonlySet<string> = new Set([...finalPhases, 'Failed']);

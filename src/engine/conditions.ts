/**
 * Kubernetes-style conditions.
 *
 * lastTransitionTime records when `status` last changed (as cert-manager and
 * apimachinery's meta.SetStatusCondition do), not when the reason or message
 * did: a Succeeded=Unknown condition keeps its time from Trying to Confirming.
 * Keeping it stable also keeps a step that changes nothing from producing a
 * status that differs from the stored one.
 */
import type { Condition } from '../api/types.js';

export type ConditionInput = Omit<Condition, 'lastTransitionTime'> & { lastTransitionTime?: string };

/** A new list with `cond` in place of the condition of the same type (appended if absent); the input is not modified. */
export function setCondition(conditions: readonly Condition[] | undefined, cond: ConditionInput, now: number): Condition[] {
  const list = Array.isArray(conditions) ? conditions.filter((c) => c && typeof c === 'object') : [];
  const existing = list.find((c) => c.type === cond.type);
  const lastTransitionTime =
    existing && existing.status === cond.status && typeof existing.lastTransitionTime === 'string'
      ? existing.lastTransitionTime
      : (cond.lastTransitionTime ?? new Date(now).toISOString());
  const next: Condition = { ...cond, lastTransitionTime };
  if (next.observedGeneration === undefined) delete next.observedGeneration;
  return existing ? list.map((c) => (c === existing ? next : c)) : [...list, next];
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return Array.isArray(conditions) ? conditions.find((c) => c?.type === type) : undefined;
}

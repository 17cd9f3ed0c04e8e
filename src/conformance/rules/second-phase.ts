/**
 * The collecting rules: Confirm, Cancel, Compensate and Deliver must never
 * answer ABORTED/FAILED_PRECONDITION in the kit's legal sequences (the
 * operator cannot take them back; it retries them forever and stalls).
 */
import type { BranchMethod } from '../client.js';
import { fail, type Kit } from '../kit.js';

export function noSecondPhaseRefusal(kit: Kit, methods: BranchMethod[]): string {
  const calls = methods.reduce((n, m) => n + (kit.secondPhaseCalls.get(m) ?? 0), 0);
  const refused = kit.secondPhaseRefusals.filter((r) => methods.includes(r.method));
  if (refused.length > 0) {
    const byMethod = new Map<string, number>();
    for (const r of refused) byMethod.set(r.method, (byMethod.get(r.method) ?? 0) + 1);
    const first = refused[0]!;
    fail(
      `${refused.length} of ${calls} ${methods.join('/')} calls were refused (${[...byMethod].map(([m, n]) => `${m} ${n}`).join(', ')}); first in ${first.rule}: ${first.method} ${first.code}: ${first.details}`,
    );
  }
  if (calls === 0) fail(`no ${methods.join('/')} call was made (the rules before this one did not get that far)`);
  return `none of ${calls} ${methods.join('/')} calls answered ABORTED or FAILED_PRECONDITION`;
}

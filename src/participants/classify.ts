/**
 * How a participant call ended, in the protocol's terms (API.md): OK is done;
 * ABORTED or FAILED_PRECONDITION from a forward call (Try/Execute) is the
 * participant's business "no"; a deadline is a timeout; anything else — other
 * statuses, connection failures, malformed responses — is worth retrying.
 * Classification is on the status code only, never on message text.
 */
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import type { Method, OutcomeKind } from '../engine/types.js';

const forwardMethods: ReadonlySet<Method> = new Set(['Try', 'Execute']);

export function classify(method: Method, err: ServiceError | null): OutcomeKind {
  if (!err) return 'ok';
  switch (err.code) {
    case Status.OK:
      return 'ok';
    case Status.ABORTED:
    case Status.FAILED_PRECONDITION:
      return forwardMethods.has(method) ? 'refused' : 'retryable';
    case Status.DEADLINE_EXCEEDED:
      return 'timeout';
    default:
      return 'retryable';
  }
}

/** "ABORTED: insufficient stock" — the status name and the participant's own words, bounded. */
export function describeError(err: ServiceError): string {
  const name = Status[err.code] ?? `CODE_${err.code}`;
  const detail = (err.details || err.message || '').slice(0, 512);
  return detail ? `${name}: ${detail}` : name;
}

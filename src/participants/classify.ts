/**
 * How a participant call ended, in the protocol's terms (API.md, and the table
 * in docs/participants.md):
 *
 *   OK                                   done
 *   ABORTED, FAILED_PRECONDITION         on Try/Execute the participant's business "no"; retried elsewhere
 *   INVALID_ARGUMENT                     on Try/Execute a refusal (the request can never succeed, nothing
 *                                        was reserved); on the second phase retried, and Stalled at once
 *   UNIMPLEMENTED, or no gRPC server     EndpointMisconfigured: the endpoint does not serve the service the
 *   at the address (HTTP/2 "Protocol     branch needs. On Try/Execute nothing ran, so a refusal; on the
 *   error")                              second phase retried (it must eventually succeed), Stalled at once
 *   DEADLINE_EXCEEDED                    a timeout, retried
 *   anything else                        retried
 *
 * The codes come from the status; the one text match is grpc-js's own
 * transport error for a peer that does not speak HTTP/2 (a participant can
 * only misclassify its own calls with it).
 */
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import type { CallOutcome, Method, OutcomeKind } from '../engine/types.js';

const forwardMethods: ReadonlySet<Method> = new Set(['Try', 'Execute']);

/** grpc-js's words when the peer answered, but not in HTTP/2 (an HTTP/1 server, plain text where TLS is expected, …). */
const PROTOCOL_ERROR = /\bProtocol error\b/;

export interface Classified {
  kind: OutcomeKind;
  /** Status name and the participant's words (or our diagnosis), bounded. */
  message: string;
  reason?: CallOutcome['reason'];
}

/**
 * `service` is the gRPC service the call needs (e.g. kubetx.v1.TccParticipant),
 * named in the EndpointMisconfigured message so the fix is obvious.
 */
export function classifyError(method: Method, service: string, err: ServiceError): Classified {
  const forward = forwardMethods.has(method);
  const failing = (reason?: CallOutcome['reason']): OutcomeKind => (forward && reason ? 'refused' : 'retryable');
  switch (err.code) {
    case Status.OK:
      return { kind: 'ok', message: describeError(err) };
    case Status.ABORTED:
    case Status.FAILED_PRECONDITION:
      return { kind: forward ? 'refused' : 'retryable', message: describeError(err) };
    case Status.DEADLINE_EXCEEDED:
      return { kind: 'timeout', message: describeError(err) };
    case Status.INVALID_ARGUMENT:
      return { kind: failing('InvalidArgument'), message: describeError(err), reason: 'InvalidArgument' };
    case Status.UNIMPLEMENTED:
      return {
        kind: failing('EndpointMisconfigured'),
        message: `EndpointMisconfigured: the endpoint does not serve ${service} (${describeError(err)}): point the endpoint at the participant's ${service} port`,
        reason: 'EndpointMisconfigured',
      };
    case Status.UNAVAILABLE:
      if (PROTOCOL_ERROR.test(err.details ?? '')) {
        return {
          kind: failing('EndpointMisconfigured'),
          message: `EndpointMisconfigured: the endpoint is not a gRPC server (HTTP/2 protocol error): check endpoint.port and endpoint.tls (${describeError(err)})`,
          reason: 'EndpointMisconfigured',
        };
      }
      return { kind: 'retryable', message: describeError(err) };
    default:
      return { kind: 'retryable', message: describeError(err) };
  }
}

/** The outcome kind of a call that returned `err` (null = OK). */
export function classify(method: Method, err: ServiceError | null): OutcomeKind {
  return err ? classifyError(method, '', err).kind : 'ok';
}

/** "ABORTED: insufficient stock" — the status name and the participant's own words, bounded. */
export function describeError(err: ServiceError): string {
  const name = Status[err.code] ?? `CODE_${err.code}`;
  const detail = (err.details || err.message || '').slice(0, 512);
  return detail ? `${name}: ${detail}` : name;
}

/**
 * Errors a participant handler throws, and how they become gRPC statuses.
 *
 * The operator reads only the status code (API.md, "Participant protocol"):
 *   - OK                               the call is done;
 *   - ABORTED / FAILED_PRECONDITION    from Try/Execute: a business "no", the transaction rolls back;
 *   - INVALID_ARGUMENT                 from Try/Execute: the request can never succeed, rolled back at once;
 *   - anything else                    try again later (with backoff).
 *
 * So a handler says "no" by throwing `Refused`, "this payload is malformed" by
 * throwing `InvalidPayload`; every other exception is treated as transient
 * (UNAVAILABLE) and the same call will come again.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

/** Largest BranchResponse.data the operator accepts (it is kept in the object's status). */
export const MAX_DATA_BYTES = 4096;

export type RefusalCode = 'ABORTED' | 'FAILED_PRECONDITION';

/**
 * A definitive "no" from the participant: answered as ABORTED (default) or
 * FAILED_PRECONDITION. From Try/Execute it rolls the transaction back; from
 * Confirm/Cancel/Compensate/Deliver the operator still retries (those must
 * eventually succeed), so refuse there only on protocol violations.
 */
export class Refused extends Error {
  override readonly name = 'Refused';
  readonly code: RefusalCode;

  constructor(message: string, options?: { code?: RefusalCode; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code ?? 'ABORTED';
  }
}

/**
 * The request can never succeed (a payload the participant cannot parse, or
 * one that breaks its rules): answered INVALID_ARGUMENT. From Try/Execute the
 * operator refuses the branch at once instead of retrying until the timeout;
 * from Confirm/Cancel/Compensate/Deliver it keeps retrying and marks the
 * transaction Stalled (someone must fix the participant). Under a barrier the
 * handler's writes are rolled back and nothing is recorded, so the Cancel or
 * Compensate that follows is a null compensation. (Go: participant.Invalid;
 * Java: InvalidPayloadException; Python: InvalidPayload.)
 */
export class InvalidPayload extends Error {
  override readonly name = 'InvalidPayload';
}

/** The handler returned more than MAX_DATA_BYTES of data: answered INTERNAL (retryable), nothing is recorded. */
export class DataTooLarge extends Error {
  override readonly name = 'DataTooLarge';
  constructor(
    readonly bytes: number,
    readonly limit: number = MAX_DATA_BYTES,
  ) {
    super(`response data is ${bytes} bytes, over the ${limit}-byte limit of BranchResponse.data; return a reference (an id) instead of the value`);
  }
}

export function isRefused(err: unknown): err is Refused {
  return err instanceof Refused;
}

/** The gRPC status for an error thrown by a handler (or by the barrier). */
export function statusOf(err: unknown): { code: GrpcStatus; details: string } {
  if (err instanceof Refused) {
    return {
      code: err.code === 'FAILED_PRECONDITION' ? GrpcStatus.FAILED_PRECONDITION : GrpcStatus.ABORTED,
      details: err.message,
    };
  }
  if (err instanceof InvalidPayload) return { code: GrpcStatus.INVALID_ARGUMENT, details: err.message };
  if (err instanceof DataTooLarge) return { code: GrpcStatus.INTERNAL, details: err.message };
  const details = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.UNAVAILABLE, details: details || 'participant error' };
}

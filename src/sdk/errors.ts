/**
 * Errors a participant handler throws, and how they become gRPC statuses.
 *
 * The operator reads only the status code (API.md, "Participant protocol"):
 *   - OK                               the call is done;
 *   - ABORTED / FAILED_PRECONDITION    from Try/Execute: a business "no", the transaction rolls back;
 *   - anything else                    try again later (with backoff).
 *
 * So a handler says "no" by throwing `Refused`; every other exception is treated
 * as transient (UNAVAILABLE) and the same call will come again.
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
  if (err instanceof DataTooLarge) return { code: GrpcStatus.INTERNAL, details: err.message };
  const details = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.UNAVAILABLE, details: details || 'participant error' };
}

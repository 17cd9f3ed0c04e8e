package io.kubetx.participant;

import io.grpc.Status;

/**
 * A definitive business "no", answered as ABORTED (the default) or FAILED_PRECONDITION. From
 * Try/Execute it rolls the transaction back; from Confirm/Cancel/Compensate/Deliver the operator
 * still retries (those must eventually succeed), so refuse there only on protocol violations.
 *
 * <p>Thrown inside a barrier handler it rolls back the handler's effect and the barrier row, so
 * nothing is recorded.
 */
public class RefusedException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status.Code code;

  /** A refusal answered ABORTED. */
  public RefusedException(String message) {
    this(message, Status.Code.ABORTED);
  }

  /**
   * A refusal answered with {@code code}: {@link Status.Code#ABORTED} or {@link
   * Status.Code#FAILED_PRECONDITION}; any other code is answered ABORTED.
   */
  public RefusedException(String message, Status.Code code) {
    super(message);
    this.code = code == Status.Code.FAILED_PRECONDITION ? Status.Code.FAILED_PRECONDITION : Status.Code.ABORTED;
  }

  /** A refusal answered FAILED_PRECONDITION (the barrier uses it for protocol violations). */
  public static RefusedException failedPrecondition(String message) {
    return new RefusedException(message, Status.Code.FAILED_PRECONDITION);
  }

  /** The status code the refusal is answered with: ABORTED or FAILED_PRECONDITION. */
  public Status.Code code() {
    return code;
  }
}

package io.kubetx.participant;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;

/**
 * The status-code contract (docs/participants.md): the gRPC status a handler's exception is
 * answered with. The operator reads only the code.
 *
 * <table>
 *   <caption>exception → status</caption>
 *   <tr><td>{@link RefusedException}</td><td>ABORTED, or FAILED_PRECONDITION</td></tr>
 *   <tr><td>{@link InvalidPayloadException}</td><td>INVALID_ARGUMENT</td></tr>
 *   <tr><td>{@link DataTooLargeException}</td><td>INTERNAL</td></tr>
 *   <tr><td>{@link StatusRuntimeException}, {@link StatusException}</td><td>its code, unchanged</td></tr>
 *   <tr><td>an {@link Error} (a bug: AssertionError, StackOverflowError…)</td><td>INTERNAL</td></tr>
 *   <tr><td>any other exception</td><td>UNAVAILABLE with its message: retried</td></tr>
 * </table>
 *
 * <p>The cause chain is searched, so wrapping (e.g. in a {@code CompletionException}) is fine.
 */
public final class Statuses {
  private Statuses() {}

  /** The status {@code t} is answered with; {@code null} is OK. */
  public static Status of(Throwable t) {
    if (t == null) {
      return Status.OK;
    }
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (c instanceof RefusedException r) {
        return Status.fromCode(r.code()).withDescription(r.getMessage());
      }
      if (c instanceof InvalidPayloadException i) {
        return Status.INVALID_ARGUMENT.withDescription(i.getMessage());
      }
      if (c instanceof DataTooLargeException d) {
        return Status.INTERNAL.withDescription(d.getMessage());
      }
      if (c instanceof StatusRuntimeException s && s.getStatus().getCode() != Status.Code.OK) {
        return s.getStatus();
      }
      if (c instanceof StatusException s && s.getStatus().getCode() != Status.Code.OK) {
        return s.getStatus();
      }
    }
    if (t instanceof Error) {
      return Status.INTERNAL.withDescription("handler failed: " + t.getClass().getName());
    }
    String msg = t.getMessage();
    if (msg == null || msg.isEmpty()) {
      msg = t.getClass().getName();
    }
    return Status.UNAVAILABLE.withDescription(msg);
  }

  /** {@link #of} as an exception to hand to gRPC. */
  public static StatusRuntimeException exception(Throwable t) {
    return of(t).asRuntimeException();
  }
}

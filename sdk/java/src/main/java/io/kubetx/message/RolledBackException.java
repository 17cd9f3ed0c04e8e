package io.kubetx.message;

/**
 * The check-back already answered ROLLED_BACK for this uid, so the local transaction must not
 * commit (roll it back). A conformance hook answers it FAILED_PRECONDITION.
 */
public class RolledBackException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RolledBackException(String message) {
    super(message);
  }
}

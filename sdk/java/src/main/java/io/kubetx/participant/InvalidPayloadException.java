package io.kubetx.participant;

/**
 * The request can never succeed (a malformed payload): answered INVALID_ARGUMENT. From
 * Try/Execute the transaction rolls back at once; throw it only if nothing was reserved or changed.
 * From the other methods the operator keeps retrying and marks the transaction Stalled.
 */
public class InvalidPayloadException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public InvalidPayloadException(String message) {
    super(message);
  }

  public InvalidPayloadException(String message, Throwable cause) {
    super(message, cause);
  }
}

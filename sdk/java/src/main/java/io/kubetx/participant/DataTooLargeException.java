package io.kubetx.participant;

/**
 * A handler's {@link Response#data()} exceeds {@link Response#MAX_DATA_BYTES}: answered INTERNAL
 * (retried), and nothing is recorded.
 */
public class DataTooLargeException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final int bytes;

  public DataTooLargeException(int bytes) {
    super("response data is " + bytes + " bytes, over the " + Response.MAX_DATA_BYTES
        + "-byte limit of BranchResponse.data; return a reference (an id) instead of the value");
    this.bytes = bytes;
  }

  /** The size of the data that was refused. */
  public int bytes() {
    return bytes;
  }
}

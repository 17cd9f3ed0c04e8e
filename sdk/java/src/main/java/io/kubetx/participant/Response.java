package io.kubetx.participant;

import io.kubetx.proto.v1.BranchResponse;
import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * The answer to a branch call (a {@code BranchResponse}).
 *
 * @param message shown in the transaction's status and Events; keep secrets out of it. Never null.
 * @param data kept in status and handed back as {@link Request#result()}; only from Try and
 *     Execute, at most {@link #MAX_DATA_BYTES}. Never null.
 */
public record Response(String message, byte[] data) {

  /** The largest {@code data} the operator accepts: larger is answered INTERNAL. */
  public static final int MAX_DATA_BYTES = 4096;

  private static final Response EMPTY = new Response("", new byte[0]);

  public Response {
    message = Objects.requireNonNullElse(message, "");
    data = data == null ? new byte[0] : data;
  }

  /** An OK with no message and no data. */
  public static Response empty() {
    return EMPTY;
  }

  /** An OK with a message and no data. */
  public static Response of(String message) {
    return new Response(message, null);
  }

  /** An OK with a message and data. */
  public static Response of(String message, byte[] data) {
    return new Response(message, data);
  }

  /** An OK with a message and data given as text (e.g. JSON), stored as UTF-8. */
  public static Response of(String message, String data) {
    return new Response(message, data.getBytes(StandardCharsets.UTF_8));
  }

  /** The data decoded as UTF-8 text. */
  public String dataText() {
    return new String(data, StandardCharsets.UTF_8);
  }

  /** Converts to a {@code BranchResponse}. */
  public BranchResponse toProto() {
    return BranchResponse.newBuilder().setMessage(message).setData(ByteString.copyFrom(data)).build();
  }

  /** Converts a {@code BranchResponse} (clients and tests). */
  public static Response fromProto(BranchResponse r) {
    return new Response(r.getMessage(), r.getData().toByteArray());
  }

  /**
   * Throws {@link DataTooLargeException} when this response carries more than {@link
   * #MAX_DATA_BYTES} of data.
   */
  public Response checkData() {
    if (data.length > MAX_DATA_BYTES) {
      throw new DataTooLargeException(data.length);
    }
    return this;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Response r && message.equals(r.message) && Arrays.equals(data, r.data);
  }

  @Override
  public int hashCode() {
    return 31 * message.hashCode() + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return "Response[message=" + message + ", data=" + data.length + " bytes]";
  }
}

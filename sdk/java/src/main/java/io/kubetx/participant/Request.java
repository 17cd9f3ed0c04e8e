package io.kubetx.participant;

import io.kubetx.proto.v1.BranchRequest;
import com.google.protobuf.ByteString;
import java.util.Objects;

/**
 * One branch call (a {@code BranchRequest}). {@code payload} is the user's JSON bytes, passed on
 * undecoded.
 *
 * @param transactionUid metadata.uid of the DistributedTransaction; with {@code branch} and the
 *     method it is the idempotency key
 * @param namespace the DistributedTransaction's namespace
 * @param name the DistributedTransaction's name
 * @param branch the branch name from the spec
 * @param operation the free string from the branch spec: one server can serve many resources
 * @param payload the branch's (or the transaction's) payload: JSON bytes, never null
 * @param attempt 1 for the first call of this method on this branch (an unsigned 32-bit value)
 * @param result Confirm, Cancel and Compensate: the data this branch's Try or Execute returned.
 *     It can be empty even when the Try ran (its answer may have been lost), so look reservations
 *     up by {@code transactionUid}. Never null.
 */
public record Request(
    String transactionUid,
    String namespace,
    String name,
    String branch,
    String operation,
    byte[] payload,
    int attempt,
    byte[] result) {

  public Request {
    transactionUid = Objects.requireNonNullElse(transactionUid, "");
    namespace = Objects.requireNonNullElse(namespace, "");
    name = Objects.requireNonNullElse(name, "");
    branch = Objects.requireNonNullElse(branch, "");
    operation = Objects.requireNonNullElse(operation, "");
    payload = payload == null ? new byte[0] : payload;
    result = result == null ? new byte[0] : result;
  }

  /** Converts a {@code BranchRequest}. */
  public static Request fromProto(BranchRequest r) {
    return new Request(
        r.getTransactionUid(),
        r.getNamespace(),
        r.getName(),
        r.getBranch(),
        r.getOperation(),
        r.getPayload().toByteArray(),
        r.getAttempt(),
        r.getResult().toByteArray());
  }

  /** Converts the request back into a {@code BranchRequest} (clients and tests). */
  public BranchRequest toProto() {
    return BranchRequest.newBuilder()
        .setTransactionUid(transactionUid)
        .setNamespace(namespace)
        .setName(name)
        .setBranch(branch)
        .setOperation(operation)
        .setPayload(ByteString.copyFrom(payload))
        .setAttempt(attempt)
        .setResult(ByteString.copyFrom(result))
        .build();
  }

  /** The same request with another attempt number (tests, retries). */
  public Request withAttempt(int attempt) {
    return new Request(transactionUid, namespace, name, branch, operation, payload, attempt, result);
  }

  /** The same request with {@code result} set (what Try/Execute returned in data). */
  public Request withResult(byte[] result) {
    return new Request(transactionUid, namespace, name, branch, operation, payload, attempt, result);
  }

  /** The payload decoded as UTF-8 text (JSON). */
  public String payloadText() {
    return new String(payload, java.nio.charset.StandardCharsets.UTF_8);
  }

  @Override
  public String toString() {
    // Never the payload or the result: they may hold secrets.
    return "Request[uid=" + transactionUid + ", " + namespace + "/" + name + ", branch=" + branch
        + ", operation=" + operation + ", attempt=" + attempt + "]";
  }
}

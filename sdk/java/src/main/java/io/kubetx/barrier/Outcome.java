package io.kubetx.barrier;

/** How the barrier answered a call. */
public enum Outcome {
  /** The handler ran now and its response was recorded. */
  EXECUTED,
  /** A repeat, answered from the stored row; the handler did not run. */
  DUPLICATE,
  /** A Cancel/Compensate with no Try/Execute before it; the handler did not run. */
  NULL_COMPENSATION;

  /** The name the TypeScript and Go SDKs use: "executed", "duplicate", "null-compensation". */
  @Override
  public String toString() {
    return switch (this) {
      case EXECUTED -> "executed";
      case DUPLICATE -> "duplicate";
      case NULL_COMPENSATION -> "null-compensation";
    };
  }
}

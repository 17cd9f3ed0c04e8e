package io.kubetx.barrier;

/** The protocol method of a call: the third part of the barrier key. */
public enum Method {
  TRY("Try"),
  CONFIRM("Confirm"),
  CANCEL("Cancel"),
  EXECUTE("Execute"),
  COMPENSATE("Compensate"),
  DELIVER("Deliver");

  private final String column;

  Method(String column) {
    this.column = column;
  }

  /** The method as stored in the table's method column (and named in the proto): "Try", … */
  public String column() {
    return column;
  }

  /** The Try/Execute that a Confirm/Cancel/Compensate completes or undoes, or null. */
  public Method forward() {
    return switch (this) {
      case CONFIRM, CANCEL -> TRY;
      case COMPENSATE -> EXECUTE;
      default -> null;
    };
  }

  /** The method whose blocker fences this one out: Cancel for Try, Compensate for Execute. */
  Method compensation() {
    return this == TRY ? CANCEL : COMPENSATE;
  }

  @Override
  public String toString() {
    return column;
  }
}

package io.kubetx.examples.bank;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.grpc.Status;
import io.kubetx.barrier.TxSaga;
import io.kubetx.barrier.TxTcc;
import io.kubetx.participant.InvalidPayloadException;
import io.kubetx.participant.RefusedException;
import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import javax.sql.DataSource;

/**
 * The TransOut/TransIn operations of one bank on its own PostgreSQL database, as TCC ({@link
 * TxTcc}) and as Saga ({@link TxSaga}): examples/bank-go's bank.go, in Java. The barrier runs each
 * method at most once per (uid, branch, method), in the connection it passes, and answers null
 * compensations and hanging Trys without calling it.
 */
final class Bank implements TxTcc, TxSaga {
  static final String TRANS_OUT = "TransOut";
  static final String TRANS_IN = "TransIn";

  /**
   * Created at start-up. Every statement is idempotent, and the script runs under a
   * transaction-scoped advisory lock, so two processes starting at once do not race on CREATE
   * TABLE. The same schema as bank-go's: a Go and a Java bank can share the database.
   */
  private static final String SCHEMA = """
      CREATE TABLE IF NOT EXISTS accounts (
        id      text PRIMARY KEY,
        balance bigint NOT NULL CHECK (balance >= 0),
        held    bigint NOT NULL DEFAULT 0 CHECK (held >= 0)
      );
      -- TCC TransIn: a credit announced by Try, applied by Confirm, dropped by Cancel.
      CREATE TABLE IF NOT EXISTS pending_credits (
        uid     text NOT NULL,
        branch  text NOT NULL,
        account text NOT NULL REFERENCES accounts (id),
        amount  bigint NOT NULL CHECK (amount > 0),
        PRIMARY KEY (uid, branch)
      );
      -- Audit: one row each time a handler's business effect commits. No key on purpose: a
      -- duplicate effect would show up as a second row.
      CREATE TABLE IF NOT EXISTS applied (
        seq        bigserial PRIMARY KEY,
        uid        text NOT NULL,
        branch     text NOT NULL,
        method     text NOT NULL,
        operation  text NOT NULL,
        account    text NOT NULL,
        amount     bigint NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )
      """;
  private static final long SCHEMA_LOCK = 0x6b75626574780001L;

  static void migrate(DataSource ds) throws SQLException {
    try (Connection c = ds.getConnection()) {
      c.setAutoCommit(false);
      try (Statement s = c.createStatement()) {
        s.execute("SELECT pg_advisory_xact_lock(" + SCHEMA_LOCK + ")");
        s.execute(SCHEMA);
        c.commit();
      } catch (SQLException e) {
        c.rollback();
        throw e;
      }
    }
  }

  private final String name;
  /** Other operation names mapped onto TransOut or TransIn, e.g. the conformance kit's "conformance". */
  private final Map<String, String> aliases;

  Bank(String name, Map<String, String> aliases) {
    this.name = name;
    this.aliases = aliases;
  }

  /** The payload of both operations: {"account": string, "amount": positive integer}. */
  record Transfer(String account, long amount) {}

  static Transfer parse(Request r) {
    JsonObject o;
    try {
      JsonElement e = JsonParser.parseString(r.payloadText());
      if (!e.isJsonObject()) {
        throw new IllegalArgumentException("not an object");
      }
      o = e.getAsJsonObject();
    } catch (RuntimeException e) {
      throw new InvalidPayloadException("payload: want {\"account\": string, \"amount\": integer}: " + e.getMessage());
    }
    JsonElement account = o.get("account");
    if (account == null || !account.isJsonPrimitive() || !account.getAsJsonPrimitive().isString() || account.getAsString().isEmpty()) {
      throw new InvalidPayloadException("payload: account is missing");
    }
    long amount = integer(o.get("amount"));
    if (amount <= 0) {
      throw new InvalidPayloadException("payload: amount must be a positive integer, got " + o.get("amount"));
    }
    return new Transfer(account.getAsString(), amount);
  }

  private static long integer(JsonElement e) {
    if (e == null || !e.isJsonPrimitive() || !((JsonPrimitive) e).isNumber()) {
      return 0;
    }
    try {
      return new BigDecimal(e.getAsString()).longValueExact();
    } catch (ArithmeticException | NumberFormatException x) {
      return 0;
    }
  }

  /**
   * The amount a Confirm/Cancel/Compensate acts on: what its Try/Execute recorded in data, else the
   * payload's (the payload is immutable, so both agree; result is the record of what happened).
   */
  static long amountOf(Request r, Transfer t) {
    if (r.result().length > 0) {
      try {
        long n = integer(JsonParser.parseString(new String(r.result(), java.nio.charset.StandardCharsets.UTF_8)).getAsJsonObject().get("amount"));
        if (n > 0) {
          return n;
        }
      } catch (RuntimeException e) {
        // not ours: take the payload's
      }
    }
    return t.amount();
  }

  private static Response reply(String msg, long amount) {
    return Response.of(msg, "{\"amount\":" + amount + "}");
  }

  private String operation(Request r) {
    String op = aliases.getOrDefault(r.operation(), r.operation());
    if (!op.equals(TRANS_OUT) && !op.equals(TRANS_IN)) {
      throw new InvalidPayloadException("unknown operation \"" + r.operation() + "\" (want " + TRANS_OUT + " or " + TRANS_IN + ")");
    }
    return op;
  }

  /** Try: TransOut holds the amount (refused on insufficient funds); TransIn records a pending credit. */
  @Override
  public Response onTry(Connection tx, Request r) throws SQLException {
    String op = operation(r);
    Transfer t = parse(r);
    if (op.equals(TRANS_OUT)) {
      if (exec(tx, "UPDATE accounts SET held = held + ? WHERE id = ? AND balance - held >= ?", t.amount(), t.account(), t.amount()) == 0) {
        throw refusal(tx, t);
      }
      audit(tx, r, "Try", op, t.account(), t.amount());
      return reply(name + ": held " + t.amount() + " on " + t.account(), t.amount());
    }
    mustExist(tx, t.account());
    exec(tx, "INSERT INTO pending_credits (uid, branch, account, amount) VALUES (?, ?, ?, ?)", r.transactionUid(), r.branch(), t.account(), t.amount());
    audit(tx, r, "Try", op, t.account(), t.amount());
    return reply(name + ": credit of " + t.amount() + " to " + t.account() + " pending", t.amount());
  }

  /** Confirm: TransOut debits the held amount; TransIn applies the pending credit. */
  @Override
  public Response onConfirm(Connection tx, Request r) throws SQLException {
    String op = operation(r);
    Transfer t = parse(r);
    long amount = amountOf(r, t);
    if (op.equals(TRANS_OUT)) {
      execOne(tx, "UPDATE accounts SET balance = balance - ?, held = held - ? WHERE id = ?", amount, amount, t.account());
      audit(tx, r, "Confirm", op, t.account(), amount);
      return Response.of(name + ": debited " + amount + " from " + t.account());
    }
    String account;
    try (PreparedStatement s = tx.prepareStatement("DELETE FROM pending_credits WHERE uid = ? AND branch = ? RETURNING account, amount")) {
      s.setString(1, r.transactionUid());
      s.setString(2, r.branch());
      try (ResultSet rs = s.executeQuery()) {
        if (!rs.next()) {
          // The barrier lets Confirm through only after a Try that took effect.
          throw new SQLException("no pending credit for this branch");
        }
        account = rs.getString(1);
        amount = rs.getLong(2);
      }
    }
    execOne(tx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, account);
    audit(tx, r, "Confirm", op, account, amount);
    return Response.of(name + ": credited " + amount + " to " + account);
  }

  /** Cancel: TransOut releases the hold; TransIn drops the pending credit. Runs only after a Try that took effect. */
  @Override
  public Response onCancel(Connection tx, Request r) throws SQLException {
    String op = operation(r);
    Transfer t = parse(r);
    long amount = amountOf(r, t);
    if (op.equals(TRANS_OUT)) {
      execOne(tx, "UPDATE accounts SET held = held - ? WHERE id = ?", amount, t.account());
    } else {
      exec(tx, "DELETE FROM pending_credits WHERE uid = ? AND branch = ?", r.transactionUid(), r.branch());
    }
    audit(tx, r, "Cancel", op, t.account(), amount);
    return Response.of(name + ": " + op + " of " + amount + " on " + t.account() + " cancelled");
  }

  /** Execute: TransOut debits (refused on insufficient funds); TransIn credits (refused only for an unknown account). */
  @Override
  public Response onExecute(Connection tx, Request r) throws SQLException {
    String op = operation(r);
    Transfer t = parse(r);
    if (op.equals(TRANS_OUT)) {
      if (exec(tx, "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance - held >= ?", t.amount(), t.account(), t.amount()) == 0) {
        throw refusal(tx, t);
      }
    } else if (exec(tx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", t.amount(), t.account()) == 0) {
      throw new RefusedException(name + ": no account \"" + t.account() + "\"");
    }
    audit(tx, r, "Execute", op, t.account(), t.amount());
    return reply(name + ": " + (op.equals(TRANS_OUT) ? "debited" : "credited") + " " + t.amount() + " on " + t.account(), t.amount());
  }

  /**
   * Compensate: TransOut credits the amount back; TransIn debits its credit back. When that credit
   * was already spent it answers UNAVAILABLE and the operator retries until the account is funded
   * again: the balance never goes negative and no money is made up.
   */
  @Override
  public Response onCompensate(Connection tx, Request r) throws SQLException {
    String op = operation(r);
    Transfer t = parse(r);
    long amount = amountOf(r, t);
    if (op.equals(TRANS_OUT)) {
      execOne(tx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, t.account());
    } else if (exec(tx, "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance - held >= ?", amount, t.account(), amount) == 0) {
      throw Status.UNAVAILABLE.withDescription("the credit to undo has already been spent; retrying until the account is funded").asRuntimeException();
    }
    audit(tx, r, "Compensate", op, t.account(), amount);
    return Response.of(name + ": " + op + " of " + amount + " on " + t.account() + " compensated");
  }

  /** Tells an unknown account from insufficient funds. */
  private RefusedException refusal(Connection tx, Transfer t) throws SQLException {
    mustExist(tx, t.account());
    return new RefusedException(name + ": insufficient funds on " + t.account() + " for " + t.amount());
  }

  private void mustExist(Connection tx, String account) throws SQLException {
    try (PreparedStatement s = tx.prepareStatement("SELECT 1 FROM accounts WHERE id = ?")) {
      s.setString(1, account);
      try (ResultSet rs = s.executeQuery()) {
        if (!rs.next()) {
          throw new RefusedException(name + ": no account \"" + account + "\"");
        }
      }
    }
  }

  private static void audit(Connection tx, Request r, String method, String op, String account, long amount) throws SQLException {
    exec(tx, "INSERT INTO applied (uid, branch, method, operation, account, amount) VALUES (?, ?, ?, ?, ?, ?)",
        r.transactionUid(), r.branch(), method, op, account, amount);
  }

  static int exec(Connection tx, String sql, Object... args) throws SQLException {
    try (PreparedStatement s = tx.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        s.setObject(i + 1, args[i]);
      }
      return s.executeUpdate();
    }
  }

  /** An UPDATE that must change exactly one row (a retryable error otherwise). */
  private static void execOne(Connection tx, String sql, Object... args) throws SQLException {
    int n = exec(tx, sql, args);
    if (n != 1) {
      throw new SQLException("expected to update one account, updated " + n);
    }
  }
}

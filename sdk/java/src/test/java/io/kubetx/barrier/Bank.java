package io.kubetx.barrier;

import io.kubetx.participant.RefusedException;
import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;

/**
 * The tests' business: accounts with a balance and a held amount, TCC and Saga over them (the
 * conformance kit's semantics), and a count of every handler run.
 */
final class Bank implements TxTcc, TxSaga, TxReceiver {
  final AtomicInteger runs = new AtomicInteger();

  static void schema(DataSource ds) throws SQLException {
    try (Connection c = ds.getConnection(); Statement s = c.createStatement()) {
      s.execute("CREATE TABLE accounts (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL, held BIGINT NOT NULL)");
      s.execute("CREATE TABLE holds (uid VARCHAR(64) NOT NULL, branch VARCHAR(63) NOT NULL, account VARCHAR(64) NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (uid, branch))");
    }
  }

  static void open(DataSource ds, String account, long balance) throws SQLException {
    try (Connection c = ds.getConnection(); PreparedStatement s = c.prepareStatement("INSERT INTO accounts (id, balance, held) VALUES (?, ?, 0)")) {
      s.setString(1, account);
      s.setLong(2, balance);
      s.executeUpdate();
    }
  }

  /** {balance, held} of an account. */
  static long[] read(DataSource ds, String account) throws SQLException {
    try (Connection c = ds.getConnection(); PreparedStatement s = c.prepareStatement("SELECT balance, held FROM accounts WHERE id = ?")) {
      s.setString(1, account);
      try (ResultSet rs = s.executeQuery()) {
        rs.next();
        return new long[] {rs.getLong(1), rs.getLong(2)};
      }
    }
  }

  static long count(DataSource ds, String sql) throws SQLException {
    try (Connection c = ds.getConnection(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  static byte[] payload(String account, long amount) {
    return ("{\"account\":\"" + account + "\",\"amount\":" + amount + "}").getBytes(StandardCharsets.UTF_8);
  }

  static Request request(String uid, String account, long amount) {
    return new Request(uid, "test", "tx-" + uid, "b", "move", payload(account, amount), 1, null);
  }

  private static final Pattern P = Pattern.compile("\"account\":\"([^\"]*)\",\"amount\":(\\d+)");

  private record Move(String account, long amount) {}

  private static Move parse(Request r) {
    Matcher m = P.matcher(r.payloadText());
    if (!m.find()) {
      throw new io.kubetx.participant.InvalidPayloadException("bad payload");
    }
    return new Move(m.group(1), Long.parseLong(m.group(2)));
  }

  private static int update(Connection tx, String sql, Object... args) throws SQLException {
    try (PreparedStatement s = tx.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        s.setObject(i + 1, args[i]);
      }
      return s.executeUpdate();
    }
  }

  @Override
  public Response onTry(Connection tx, Request r) throws SQLException {
    runs.incrementAndGet();
    Move m = parse(r);
    if (update(tx, "UPDATE accounts SET held = held + ? WHERE id = ? AND balance - held >= ?", m.amount, m.account, m.amount) == 0) {
      throw new RefusedException("insufficient funds on " + m.account);
    }
    update(tx, "INSERT INTO holds (uid, branch, account, amount) VALUES (?, ?, ?, ?)", r.transactionUid(), r.branch(), m.account, m.amount);
    return Response.of("held " + m.amount, "{\"amount\":" + m.amount + "}");
  }

  @Override
  public Response onConfirm(Connection tx, Request r) throws SQLException {
    runs.incrementAndGet();
    Move m = parse(r);
    update(tx, "UPDATE accounts SET balance = balance - ?, held = held - ? WHERE id = ?", m.amount, m.amount, m.account);
    update(tx, "DELETE FROM holds WHERE uid = ? AND branch = ?", r.transactionUid(), r.branch());
    return Response.of("debited " + m.amount);
  }

  @Override
  public Response onCancel(Connection tx, Request r) throws SQLException {
    runs.incrementAndGet();
    Move m = parse(r);
    // Look the hold up by uid: the barrier runs Cancel only after a Try that committed.
    if (update(tx, "DELETE FROM holds WHERE uid = ? AND branch = ?", r.transactionUid(), r.branch()) != 1) {
      throw new IllegalStateException("Cancel ran without a hold");
    }
    update(tx, "UPDATE accounts SET held = held - ? WHERE id = ?", m.amount, m.account);
    return Response.of("released " + m.amount);
  }

  @Override
  public Response onExecute(Connection tx, Request r) throws SQLException {
    runs.incrementAndGet();
    Move m = parse(r);
    if (update(tx, "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance - held >= ?", m.amount, m.account, m.amount) == 0) {
      throw new RefusedException("insufficient funds on " + m.account);
    }
    return Response.of("debited " + m.amount, "{\"amount\":" + m.amount + "}");
  }

  @Override
  public Response onCompensate(Connection tx, Request r) throws SQLException {
    runs.incrementAndGet();
    Move m = parse(r);
    update(tx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", m.amount, m.account);
    return Response.of("credited back " + m.amount);
  }

  @Override
  public Response onDeliver(Connection tx, Request r) throws SQLException {
    runs.incrementAndGet();
    Move m = parse(r);
    update(tx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", m.amount, m.account);
    return Response.of("credited " + m.amount);
  }
}

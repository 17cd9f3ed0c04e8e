package io.kubetx.barrier;

import io.kubetx.internal.Sql;
import io.kubetx.participant.InvalidPayloadException;
import io.kubetx.participant.ReceiverHandler;
import io.kubetx.participant.RefusedException;
import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import io.kubetx.participant.SagaHandler;
import io.kubetx.participant.TccHandler;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import javax.sql.DataSource;

/**
 * The sub-transaction barrier (after dtm's) on JDBC: exactly-once effects for branch calls that
 * arrive at least once and out of order. See {@code package-info.java} for the rules and the
 * concurrency argument. Safe for concurrent use.
 *
 * <pre>{@code
 * Barrier barrier = Barrier.create(dataSource);         // PostgreSQL or MySQL/MariaDB, table kubetx_barrier
 * Barrier.Result res = barrier.run(Method.TRY, request, (tx, r) -> { ...; return Response.of("held"); });
 * // or in your own transaction (auto-commit off; you commit, and roll back on any exception):
 * Barrier.Result res = barrier.runInTransaction(connection, Method.TRY, request, handler);
 * }</pre>
 */
public final class Barrier {
  /** The barrier table's default name (the TypeScript and Go SDKs' too). */
  public static final String DEFAULT_TABLE = "kubetx_barrier";
  /** {@link #cleanup}'s customary age: 7 days. */
  public static final Duration DEFAULT_RETENTION = Duration.ofDays(7);

  /** What {@link #run} and {@link #runInTransaction} answered, and how. */
  public record Result(Response response, Outcome outcome) {}

  /** A stored barrier row (inspection and tests). {@code origin} is "call" or "blocker". */
  public record Row(String origin, String message, byte[] data) {}

  private final DataSource ds;
  private final Dialect dialect;
  private final String table;
  private final Duration lockTimeout;
  private final Clock clock;
  private final Statements sql;

  private Barrier(Builder b, Dialect dialect) {
    this.ds = b.ds;
    this.dialect = dialect;
    this.table = b.table;
    this.lockTimeout = b.lockTimeout;
    this.clock = b.clock;
    this.sql = new Statements(dialect, table);
  }

  /** A barrier on {@code ds} with the defaults (dialect detected, table kubetx_barrier), table created if missing. */
  public static Barrier create(DataSource ds) throws SQLException {
    return builder(ds).build();
  }

  public static Builder builder(DataSource ds) {
    return new Builder(ds);
  }

  public Dialect dialect() {
    return dialect;
  }

  /** The barrier table's name. */
  public String table() {
    return table;
  }

  /**
   * Opens a transaction on the barrier's DataSource (READ COMMITTED), applies the rules, runs
   * {@code h} in it when they say so, and commits the barrier row with {@code h}'s effect. If
   * {@code h} throws (a refusal included), everything is rolled back, nothing is recorded, and
   * {@code h}'s exception is rethrown unchanged.
   *
   * <p>The barrier's own exceptions: {@link RefusedException} for anti-hanging (ABORTED) and
   * protocol violations (FAILED_PRECONDITION); anything else (lock timeout, deadlock, lost
   * connection, failed commit) is retryable and answered UNAVAILABLE.
   */
  public Result run(Method m, Request r, TxHandler h) throws Exception {
    check(m, r);
    Objects.requireNonNull(h, "handler");
    return Sql.inTransaction(ds, dialect, lockTimeout, tx -> apply(tx, m, r, h));
  }

  /**
   * Applies the rules and runs {@code h} in the caller's own transaction: {@code c} must have
   * auto-commit off; use READ COMMITTED. The barrier row commits with whatever else the caller
   * does on {@code c}; the caller commits, and <b>must roll back on any exception</b> (a
   * refusal included), or a failed call would be recorded as done. The lock timeout of the
   * builder does not apply: the caller's transaction keeps its own settings.
   */
  public Result runInTransaction(Connection c, Method m, Request r, TxHandler h) throws Exception {
    check(m, r);
    Objects.requireNonNull(h, "handler");
    if (c == null || c.getAutoCommit()) {
      throw new IllegalStateException("barrier: runInTransaction needs a connection in a transaction (setAutoCommit(false))");
    }
    return apply(c, m, r, h);
  }

  /**
   * Deletes the rows of every transaction whose newest row is older than {@code olderThan}, always
   * whole transactions (all branches and methods of a uid), and returns how many rows went.
   *
   * <p>Choose the age so that no call for the transaction can still arrive: longer than its
   * timeout plus the operator's whole retry horizon ({@link #DEFAULT_RETENTION}, 7 days, is
   * customary). Deleting earlier breaks idempotency (a late repeat of Cancel would run again) and
   * anti-hanging (a late Try would no longer find its blocker).
   */
  public long cleanup(Duration olderThan) throws SQLException {
    if (olderThan.isNegative()) {
      throw new IllegalArgumentException("barrier: cleanup: negative age " + olderThan);
    }
    try (Connection c = ds.getConnection(); PreparedStatement s = c.prepareStatement(sql.cleanup)) {
      s.setLong(1, clock.millis() - olderThan.toMillis());
      return s.executeLargeUpdate();
    }
  }

  /** The committed row for (uid, branch, method), or null. */
  public Row get(String uid, String branch, Method m) throws SQLException {
    try (Connection c = ds.getConnection()) {
      return read(c, uid, branch, m, false);
    }
  }

  /** Runs each TCC method of {@code h} through {@link #run}. */
  public TccHandler tcc(TxTcc h) {
    Objects.requireNonNull(h);
    return new TccHandler() {
      @Override
      public Response onTry(Request r) throws Exception {
        return run(Method.TRY, r, h::onTry).response();
      }

      @Override
      public Response onConfirm(Request r) throws Exception {
        return run(Method.CONFIRM, r, h::onConfirm).response();
      }

      @Override
      public Response onCancel(Request r) throws Exception {
        return run(Method.CANCEL, r, h::onCancel).response();
      }
    };
  }

  /** Runs each Saga method of {@code h} through {@link #run}. */
  public SagaHandler saga(TxSaga h) {
    Objects.requireNonNull(h);
    return new SagaHandler() {
      @Override
      public Response onExecute(Request r) throws Exception {
        return run(Method.EXECUTE, r, h::onExecute).response();
      }

      @Override
      public Response onCompensate(Request r) throws Exception {
        return run(Method.COMPENSATE, r, h::onCompensate).response();
      }
    };
  }

  /** Runs {@code h.onDeliver} through {@link #run} (deduplicated on uid and branch). */
  public ReceiverHandler receiver(TxReceiver h) {
    Objects.requireNonNull(h);
    return r -> run(Method.DELIVER, r, h::onDeliver).response();
  }

  /** Whether an exception is a transient database failure (lock timeout, deadlock, serialization failure, lost connection). */
  public static boolean isRetryable(Throwable t) {
    return Sql.isRetryable(t);
  }

  private void check(Method m, Request r) {
    Objects.requireNonNull(m, "method");
    if (r == null || r.transactionUid().isEmpty() || r.branch().isEmpty()) {
      throw RefusedException.failedPrecondition("transaction_uid and branch are required");
    }
    if (dialect == Dialect.MYSQL) {
      // INSERT IGNORE would truncate longer keys silently, and two keys could collide.
      int uid = r.transactionUid().codePointCount(0, r.transactionUid().length());
      int branch = r.branch().codePointCount(0, r.branch().length());
      if (uid > 64) {
        throw new InvalidPayloadException("transaction_uid is " + uid + " characters, over the barrier table's 64");
      }
      if (branch > 63) {
        throw new InvalidPayloadException("branch is " + branch + " characters, over the barrier table's 63");
      }
    }
  }

  /** The rules, inside tx. The own method's key is always claimed first (see "Concurrency"). */
  private Result apply(Connection tx, Method m, Request r, TxHandler h) throws Exception {
    String uid = r.transactionUid();
    String branch = r.branch();
    Row own = claim(tx, uid, branch, m);
    if (own != null) {
      if (own.origin().equals("blocker")) {
        throw new RefusedException(m + " arrived after its " + m.compensation() + " (anti-hanging): refused");
      }
      return new Result(new Response(own.message(), own.data()), Outcome.DUPLICATE);
    }

    switch (m) {
      case CANCEL, COMPENSATE -> {
        Method fwd = m.forward();
        Row row = read(tx, uid, branch, fwd, true);
        if (row == null) {
          Response resp = Response.of("null compensation: no " + fwd + " had arrived, nothing to undo");
          // Waits on an in-flight Try/Execute's uncommitted row, if any.
          if (insert(tx, uid, branch, fwd, "blocker", Response.empty())) {
            fill(tx, uid, branch, m, resp);
            return new Result(resp, Outcome.NULL_COMPENSATION);
          }
          // The Try/Execute was in flight and has committed meanwhile: an ordinary compensation.
          row = read(tx, uid, branch, fwd, true);
          if (row == null) {
            throw new SQLException("barrier: the " + fwd + " row of " + uid + "/" + branch + " changed concurrently; try again");
          }
        }
        if (m == Method.CANCEL && read(tx, uid, branch, Method.CONFIRM, true) != null) {
          throw RefusedException.failedPrecondition("Cancel after Confirm: protocol violation");
        }
      }
      case CONFIRM -> {
        Row t = read(tx, uid, branch, Method.TRY, true);
        if (t == null || !t.origin().equals("call")) {
          throw RefusedException.failedPrecondition("Confirm without a successful Try: protocol violation");
        }
        if (read(tx, uid, branch, Method.CANCEL, true) != null) {
          throw RefusedException.failedPrecondition("Confirm after Cancel: protocol violation");
        }
      }
      default -> {}
    }

    Response resp = h.handle(tx, r); // its exception, unchanged, is the handler's answer
    if (resp == null) {
      resp = Response.empty();
    }
    resp.checkData();
    fill(tx, uid, branch, m, resp);
    return new Result(resp, Outcome.EXECUTED);
  }

  /**
   * Inserts the placeholder row for the own method. Returns null when the key was free (now taken:
   * an identical concurrent call waits on it), or the committed row that was already there.
   */
  private Row claim(Connection tx, String uid, String branch, Method m) throws SQLException {
    int n;
    try (PreparedStatement s = tx.prepareStatement(sql.claim)) {
      s.setString(1, uid);
      s.setString(2, branch);
      s.setString(3, m.column());
      s.setLong(4, clock.millis());
      n = s.executeUpdate();
    }
    if (n == 1) {
      return null;
    }
    // Conflict: the row is committed (possibly by a call we just waited for); a new statement
    // reads it under READ COMMITTED.
    Row row = read(tx, uid, branch, m, false);
    if (row == null) {
      throw new SQLException("barrier: the " + m + " row of " + uid + "/" + branch + " changed concurrently; try again");
    }
    return row;
  }

  private Row read(Connection c, String uid, String branch, Method m, boolean lock) throws SQLException {
    // Confirm and Cancel both lock the Try row first, so they serialize.
    try (PreparedStatement s = c.prepareStatement(lock ? sql.selectForUpdate : sql.selectRow)) {
      s.setString(1, uid);
      s.setString(2, branch);
      s.setString(3, m.column());
      try (ResultSet rs = s.executeQuery()) {
        if (!rs.next()) {
          return null;
        }
        String msg = rs.getString(2);
        byte[] data = rs.getBytes(3);
        return new Row(rs.getString(1), msg == null ? "" : msg, data == null ? new byte[0] : data);
      }
    }
  }

  /** Adds a row unless one exists; reports whether it did. */
  private boolean insert(Connection tx, String uid, String branch, Method m, String origin, Response resp) throws SQLException {
    try (PreparedStatement s = tx.prepareStatement(sql.insert)) {
      s.setString(1, uid);
      s.setString(2, branch);
      s.setString(3, m.column());
      s.setString(4, origin);
      s.setLong(5, clock.millis());
      s.setString(6, resp.message());
      s.setBytes(7, resp.data());
      return s.executeUpdate() == 1;
    }
  }

  /** Records the response in the row claimed for the own method. */
  private void fill(Connection tx, String uid, String branch, Method m, Response resp) throws SQLException {
    // MySQL counts changed rows only, so the count is not checked: the row is ours, claimed and locked.
    try (PreparedStatement s = tx.prepareStatement(sql.fill)) {
      s.setString(1, "call");
      s.setLong(2, clock.millis());
      s.setString(3, resp.message());
      s.setBytes(4, resp.data());
      s.setString(5, uid);
      s.setString(6, branch);
      s.setString(7, m.column());
      s.executeUpdate();
    }
  }

  /** Configures a {@link Barrier}. */
  public static final class Builder {
    private final DataSource ds;
    private Dialect dialect;
    private String table = DEFAULT_TABLE;
    private Duration lockTimeout = Duration.ZERO;
    private Clock clock = Clock.systemUTC();
    private boolean createTable = true;

    private Builder(DataSource ds) {
      this.ds = Objects.requireNonNull(ds, "DataSource");
    }

    /** The dialect. @default detected from the database's product name */
    public Builder dialect(Dialect d) {
      this.dialect = Objects.requireNonNull(d);
      return this;
    }

    /** The table name; {@code schema.table} (PostgreSQL) or {@code db.table} (MySQL) too. @default kubetx_barrier */
    public Builder table(String name) {
      this.table = Sql.validateTable(name);
      return this;
    }

    /**
     * Bounds how long a call waits for a lock in the transactions {@link #run} opens: PostgreSQL
     * {@code SET LOCAL lock_timeout}, MySQL {@code innodb_lock_wait_timeout} (whole seconds,
     * restored afterwards). A timeout is a retryable error. @default the server's setting
     */
    public Builder lockTimeout(Duration d) {
      if (d.isNegative()) {
        throw new IllegalArgumentException("barrier: negative lock timeout " + d);
      }
      this.lockTimeout = d;
      return this;
    }

    /** The clock for created_at and cleanup (tests). @default Clock.systemUTC() */
    public Builder clock(Clock c) {
      this.clock = Objects.requireNonNull(c);
      return this;
    }

    /** Whether build() creates the table and its index if missing. @default true */
    public Builder createTable(boolean create) {
      this.createTable = create;
      return this;
    }

    public Barrier build() throws SQLException {
      Dialect d = dialect;
      if (d == null) {
        try (Connection c = ds.getConnection()) {
          d = Dialect.detect(c);
        }
      }
      Barrier b = new Barrier(this, d);
      if (createTable) {
        Sql.ensure(ds, d, table, b.sql.ddl);
      }
      return b;
    }
  }

  /** The barrier's SQL for one table in one dialect (the Go SDK's statements.go). */
  static final class Statements {
    final String ddl;
    final String selectRow;
    final String selectForUpdate;
    final String claim;
    final String insert;
    final String fill;
    final String cleanup;

    Statements(Dialect d, String t) {
      String cols = "(uid, branch, method, origin, created_at, message, data)";
      selectRow = "SELECT origin, message, data FROM " + t + " WHERE uid = ? AND branch = ? AND method = ?";
      selectForUpdate = selectRow + " FOR UPDATE";
      fill = "UPDATE " + t + " SET origin = ?, created_at = ?, message = ?, data = ? WHERE uid = ? AND branch = ? AND method = ?";
      switch (d) {
        case POSTGRES -> {
          ddl = "CREATE TABLE IF NOT EXISTS " + t + " (\n"
              + "  uid text NOT NULL,\n"
              + "  branch text NOT NULL,\n"
              + "  method text NOT NULL,\n"
              + "  origin text NOT NULL CHECK (origin IN ('call', 'blocker')),\n"
              + "  created_at bigint NOT NULL,\n"
              + "  message text NOT NULL DEFAULT '',\n"
              + "  data bytea,\n"
              + "  PRIMARY KEY (uid, branch, method)\n"
              + ")";
          claim = "INSERT INTO " + t + " " + cols + " VALUES (?, ?, ?, 'call', ?, '', NULL) ON CONFLICT (uid, branch, method) DO NOTHING";
          insert = "INSERT INTO " + t + " " + cols + " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid, branch, method) DO NOTHING";
          cleanup = "DELETE FROM " + t + " WHERE uid IN (SELECT uid FROM " + t + " GROUP BY uid HAVING MAX(created_at) < ?)";
        }
        default -> {
          // Key columns sized for MySQL's index limits; utf8mb4_bin compares byte for byte, as
          // PostgreSQL does. The created_at index is part of the CREATE.
          ddl = "CREATE TABLE IF NOT EXISTS " + t + " (\n"
              + "  uid VARCHAR(64) NOT NULL,\n"
              + "  branch VARCHAR(63) NOT NULL,\n"
              + "  method VARCHAR(16) NOT NULL,\n"
              + "  origin VARCHAR(8) NOT NULL,\n"
              + "  created_at BIGINT NOT NULL,\n"
              + "  message TEXT NOT NULL,\n"
              + "  data LONGBLOB NULL,\n"
              + "  PRIMARY KEY (uid, branch, method),\n"
              + "  KEY " + Sql.indexName(t) + " (created_at),\n"
              + "  CHECK (origin IN ('call', 'blocker'))\n"
              + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
          claim = "INSERT IGNORE INTO " + t + " " + cols + " VALUES (?, ?, ?, 'call', ?, '', NULL)";
          insert = "INSERT IGNORE INTO " + t + " " + cols + " VALUES (?, ?, ?, ?, ?, ?, ?)";
          // MySQL refuses a subquery on the table being deleted from unless it is materialized.
          cleanup = "DELETE FROM " + t + " WHERE uid IN (SELECT uid FROM (SELECT uid FROM " + t
              + " GROUP BY uid HAVING MAX(created_at) < ?) AS expired)";
        }
      }
    }
  }
}

package io.kubetx.message;

import io.kubetx.barrier.Dialect;
import io.kubetx.internal.Sql;
import io.kubetx.participant.InvalidPayloadException;
import io.kubetx.participant.MessageSource;
import io.kubetx.proto.v1.CheckPreparedRequest;
import io.kubetx.proto.v1.CheckPreparedResponse;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import javax.sql.DataSource;

/**
 * The upstream's local message table ({@code kubetx_prepared_messages}, the TypeScript and Go
 * SDKs' layout) and its check-back: a {@link MessageSource} for the server. Safe for concurrent use.
 *
 * <p>The upstream does three steps, in this order: create the DistributedTransaction (mode
 * Message, no decision) and keep its uid; run the local transaction with {@link #runLocal} (or
 * {@link #prepare} in a transaction of your own, before the business change); set {@code
 * spec.message.decision: Commit}. If the last step never happens, the operator asks {@link
 * #checkPrepared}, which answers from the row.
 */
public final class Outbox implements MessageSource {
  /** The outbox table's default name (the TypeScript and Go SDKs' too). */
  public static final String DEFAULT_TABLE = "kubetx_prepared_messages";
  public static final String STATE_COMMITTED = "committed";
  public static final String STATE_ROLLED_BACK = "rolled_back";

  private final DataSource ds;
  private final Dialect dialect;
  private final String table;
  private final Duration lockTimeout;
  private final Clock clock;
  private final String ddl;
  private final String insert;
  private final String selectState;
  private final String cleanup;

  private Outbox(Builder b, Dialect d) {
    this.ds = b.ds;
    this.dialect = d;
    this.table = b.table;
    this.lockTimeout = b.lockTimeout;
    this.clock = b.clock;
    String values = "(uid, namespace, name, state, created_at) VALUES (?, ?, ?, ?, ?)";
    selectState = "SELECT state FROM " + table + " WHERE uid = ?";
    cleanup = "DELETE FROM " + table + " WHERE created_at < ?";
    if (d == Dialect.POSTGRES) {
      ddl = "CREATE TABLE IF NOT EXISTS " + table + " (\n"
          + "  uid text PRIMARY KEY,\n"
          + "  namespace text NOT NULL DEFAULT '',\n"
          + "  name text NOT NULL DEFAULT '',\n"
          + "  state text NOT NULL CHECK (state IN ('committed', 'rolled_back')),\n"
          + "  created_at bigint NOT NULL\n"
          + ")";
      insert = "INSERT INTO " + table + " " + values + " ON CONFLICT (uid) DO NOTHING";
    } else {
      ddl = "CREATE TABLE IF NOT EXISTS " + table + " (\n"
          + "  uid VARCHAR(64) NOT NULL PRIMARY KEY,\n"
          + "  namespace VARCHAR(253) NOT NULL DEFAULT '',\n"
          + "  name VARCHAR(253) NOT NULL DEFAULT '',\n"
          + "  state VARCHAR(16) NOT NULL,\n"
          + "  created_at BIGINT NOT NULL,\n"
          + "  KEY " + Sql.indexName(table) + " (created_at),\n"
          + "  CHECK (state IN ('committed', 'rolled_back'))\n"
          + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
      insert = "INSERT IGNORE INTO " + table + " " + values;
    }
  }

  /** An outbox on {@code ds} with the defaults (dialect detected), table created if missing. */
  public static Outbox create(DataSource ds) throws SQLException {
    return builder(ds).build();
  }

  public static Builder builder(DataSource ds) {
    return new Builder(ds);
  }

  public String table() {
    return table;
  }

  /**
   * Inserts the 'committed' row for {@code k} in the caller's business transaction ({@code tx},
   * auto-commit off); it commits or rolls back with it. Call it before the business change: the
   * row's key lock then holds off a concurrent check-back until the transaction ends.
   *
   * @throws RolledBackException when a check-back already claimed {@code k} as rolled back (roll
   *     the transaction back)
   * @throws IllegalStateException when the message was already prepared
   */
  public void prepare(Connection tx, MessageKey k) throws SQLException {
    if (k.uid().isEmpty()) {
      throw new IllegalArgumentException("message: prepare: the key needs a transaction uid");
    }
    checkKey(k.uid(), k.namespace(), k.name());
    if (tx.getAutoCommit()) {
      throw new IllegalStateException("message: prepare needs a connection in a transaction (setAutoCommit(false))");
    }
    if (insert(tx, k.uid(), k.namespace(), k.name(), STATE_COMMITTED) == 1) {
      return;
    }
    String state = state(tx, k.uid());
    String what = "message " + k.namespace() + "/" + k.name() + " (" + k.uid() + ")";
    if (STATE_ROLLED_BACK.equals(state)) {
      throw new RolledBackException(what + ": already resolved as rolled back by a check-back; the local transaction must not commit");
    }
    throw new IllegalStateException(what + ": the local transaction already committed");
  }

  /**
   * One local transaction: {@link #prepare} first, then {@code fn}, then commit. When a check-back
   * already claimed {@code k}, {@code fn} does not run and {@link RolledBackException} is thrown;
   * {@code fn}'s exception rolls everything back and is rethrown unchanged.
   */
  public <T> T runLocal(MessageKey k, LocalTransaction<T> fn) throws Exception {
    Objects.requireNonNull(fn);
    return Sql.inTransaction(ds, dialect, lockTimeout, tx -> {
      prepare(tx, k);
      return fn.run(tx);
    });
  }

  /**
   * The check-back: COMMITTED if the row says so, ROLLED_BACK if it says rolled_back; with no row
   * it first claims the uid as 'rolled_back' in its own short transaction (waiting for a local
   * transaction in flight on the same uid) and answers from what is stored then.
   */
  @Override
  public CheckPreparedResponse.State checkPrepared(CheckPreparedRequest r) throws SQLException {
    String uid = r.getTransactionUid();
    if (uid.isEmpty()) {
      throw new InvalidPayloadException("message: CheckPrepared without a transaction_uid");
    }
    checkKey(uid, r.getNamespace(), r.getName());
    String state;
    try (Connection c = ds.getConnection()) {
      if (!c.getAutoCommit()) {
        c.setAutoCommit(true);
      }
      // Auto-commit: the INSERT is a transaction of its own and waits on the key lock of a
      // runLocal in flight.
      insert(c, uid, r.getNamespace(), r.getName(), STATE_ROLLED_BACK);
      state = state(c, uid);
    }
    if (STATE_COMMITTED.equals(state)) {
      return CheckPreparedResponse.State.STATE_COMMITTED;
    }
    if (STATE_ROLLED_BACK.equals(state)) {
      return CheckPreparedResponse.State.STATE_ROLLED_BACK;
    }
    throw new SQLException("message: " + uid + ": row '" + state + "' after the claim");
  }

  /** The stored state of {@code uid} ("committed", "rolled_back", or null when there is no row), claiming nothing. */
  public String state(String uid) throws SQLException {
    try (Connection c = ds.getConnection()) {
      return state(c, uid);
    }
  }

  /**
   * Deletes rows older than {@code olderThan} and returns how many went. Keep them longer than the
   * operator can still ask (checkAfter plus its retries); 7 days is customary.
   */
  public long cleanup(Duration olderThan) throws SQLException {
    if (olderThan.isNegative()) {
      throw new IllegalArgumentException("message: cleanup: negative age " + olderThan);
    }
    try (Connection c = ds.getConnection(); PreparedStatement s = c.prepareStatement(cleanup)) {
      s.setLong(1, clock.millis() - olderThan.toMillis());
      return s.executeLargeUpdate();
    }
  }

  private int insert(Connection c, String uid, String namespace, String name, String state) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(insert)) {
      s.setString(1, uid);
      s.setString(2, namespace);
      s.setString(3, name);
      s.setString(4, state);
      s.setLong(5, clock.millis());
      return s.executeUpdate();
    }
  }

  private String state(Connection c, String uid) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(selectState)) {
      s.setString(1, uid);
      try (ResultSet rs = s.executeQuery()) {
        return rs.next() ? rs.getString(1) : null;
      }
    }
  }

  /** Refuses values longer than the MySQL columns: INSERT IGNORE would truncate them silently. */
  private void checkKey(String uid, String namespace, String name) {
    if (dialect != Dialect.MYSQL) {
      return;
    }
    if (uid.codePointCount(0, uid.length()) > 64 || namespace.codePointCount(0, namespace.length()) > 253
        || name.codePointCount(0, name.length()) > 253) {
      throw new InvalidPayloadException("message key too long for the outbox table (uid at most 64, namespace and name at most 253 characters)");
    }
  }

  /** Configures an {@link Outbox}. */
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

    /** @default detected from the database's product name */
    public Builder dialect(Dialect d) {
      this.dialect = Objects.requireNonNull(d);
      return this;
    }

    /** @default kubetx_prepared_messages */
    public Builder table(String name) {
      this.table = Sql.validateTable(name);
      return this;
    }

    /** Bounds lock waits in {@link #runLocal}'s transaction. @default the server's setting */
    public Builder lockTimeout(Duration d) {
      if (d.isNegative()) {
        throw new IllegalArgumentException("message: negative lock timeout " + d);
      }
      this.lockTimeout = d;
      return this;
    }

    /** The clock for created_at and cleanup (tests). */
    public Builder clock(Clock c) {
      this.clock = Objects.requireNonNull(c);
      return this;
    }

    /** @default true */
    public Builder createTable(boolean create) {
      this.createTable = create;
      return this;
    }

    public Outbox build() throws SQLException {
      Dialect d = dialect;
      if (d == null) {
        try (Connection c = ds.getConnection()) {
          d = Dialect.detect(c);
        }
      }
      Outbox o = new Outbox(this, d);
      if (createTable) {
        Sql.ensure(ds, d, table, o.ddl);
      }
      return o;
    }
  }
}

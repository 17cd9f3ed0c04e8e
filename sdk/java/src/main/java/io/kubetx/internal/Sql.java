package io.kubetx.internal;

import io.kubetx.barrier.Dialect;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.regex.Pattern;
import javax.sql.DataSource;

/**
 * What the barrier and the outbox share: table-name validation, table creation, and the
 * transaction the SDK opens itself. Not API: it may change in any release.
 */
public final class Sql {
  private Sql() {}

  private static final Pattern QUALIFIED = Pattern.compile("^(?:[A-Za-z_][A-Za-z0-9_]*\\.)?[A-Za-z_][A-Za-z0-9_]*$");

  /** Checks a table name before it goes into SQL text (it cannot be a bind parameter). */
  public static String validateTable(String table) {
    if (table == null || !QUALIFIED.matcher(table).matches() || table.length() > 120) {
      throw new IllegalArgumentException("invalid table name \"" + table
          + "\": want an SQL identifier ([A-Za-z_][A-Za-z0-9_]*), optionally schema-qualified");
    }
    return table;
  }

  /** The created_at index of a table: {@code <table>_created_at}, unqualified. */
  public static String indexName(String table) {
    return table.substring(table.lastIndexOf('.') + 1) + "_created_at";
  }

  /** The index name qualified with the table's schema, for to_regclass. */
  public static String qualifiedIndexName(String table) {
    int dot = table.lastIndexOf('.');
    return dot < 0 ? indexName(table) : table.substring(0, dot + 1) + indexName(table);
  }

  /**
   * Creates the table and its {@code <table>_created_at} index unless they exist; safe when
   * several processes start at once. For MySQL the DDL must include the index.
   */
  public static void ensure(DataSource ds, Dialect d, String table, String ddl) throws SQLException {
    try (Connection c = ds.getConnection()) {
      switch (d) {
        case POSTGRES -> {
          // Look before creating: CREATE INDEX IF NOT EXISTS locks the table against writes even
          // when the index exists, so it would wait for (and block) transactions in flight.
          try (PreparedStatement s = c.prepareStatement("SELECT to_regclass(?)::text, to_regclass(?)::text")) {
            s.setString(1, table);
            s.setString(2, qualifiedIndexName(table));
            try (ResultSet rs = s.executeQuery()) {
              rs.next();
              if (rs.getString(1) != null && rs.getString(2) != null) {
                return;
              }
            }
          }
          boolean auto = c.getAutoCommit();
          c.setAutoCommit(false);
          try (Statement s = c.createStatement()) {
            // CREATE TABLE IF NOT EXISTS is not safe against itself run concurrently: serialize it.
            try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(hashtext(?))")) {
              lock.setString(1, "kubetx_init:" + table);
              lock.execute();
            }
            s.execute(ddl);
            s.execute("CREATE INDEX IF NOT EXISTS " + indexName(table) + " ON " + table + " (created_at)");
            c.commit();
          } catch (SQLException e) {
            c.rollback();
            throw e;
          } finally {
            c.setAutoCommit(auto);
          }
        }
        case MYSQL -> {
          // One statement with the index inside: atomic under MySQL's metadata lock.
          try (Statement s = c.createStatement()) {
            s.execute(ddl);
          }
        }
      }
    }
  }

  /** A unit of work in a transaction the SDK opened. */
  @FunctionalInterface
  public interface Work<T> {
    T run(Connection tx) throws Exception;
  }

  /**
   * Runs {@code work} in a transaction of its own on a connection from {@code ds} and commits, or
   * rolls back and rethrows {@code work}'s exception unchanged. READ COMMITTED on both dialects;
   * the lock timeout (when positive) is {@code SET LOCAL lock_timeout} on PostgreSQL and the
   * session's {@code innodb_lock_wait_timeout} (whole seconds, restored afterwards) on MySQL. The
   * connection's auto-commit and isolation are restored before it goes back to the pool.
   */
  public static <T> T inTransaction(DataSource ds, Dialect d, Duration lockTimeout, Work<T> work) throws Exception {
    try (Connection c = ds.getConnection()) {
      boolean auto = c.getAutoCommit();
      int isolation = c.getTransactionIsolation();
      Long oldWait = null;
      boolean clean = false;
      try {
        if (d == Dialect.MYSQL && lockTimeout != null && lockTimeout.toMillis() > 0) {
          try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT @@SESSION.innodb_lock_wait_timeout")) {
            rs.next();
            oldWait = rs.getLong(1);
          }
          long secs = Math.max(1, (lockTimeout.toMillis() + 999) / 1000);
          try (Statement s = c.createStatement()) {
            s.execute("SET SESSION innodb_lock_wait_timeout = " + secs);
          }
        }
        // Every decision reads rows committed before the statement making it and waits on row
        // locks, never on a snapshot spanning statements.
        if (isolation != Connection.TRANSACTION_READ_COMMITTED) {
          c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
        }
        c.setAutoCommit(false);
        T out;
        try {
          if (d == Dialect.POSTGRES && lockTimeout != null && lockTimeout.toMillis() > 0) {
            try (Statement s = c.createStatement()) {
              s.execute("SET LOCAL lock_timeout = " + lockTimeout.toMillis());
            }
          }
          out = work.run(c);
          c.commit();
        } catch (Throwable t) {
          try {
            c.rollback();
          } catch (SQLException e) {
            t.addSuppressed(e);
          }
          throw t;
        }
        clean = true;
        return out;
      } finally {
        try {
          if (!c.isClosed()) {
            c.setAutoCommit(auto);
            if (isolation != Connection.TRANSACTION_READ_COMMITTED) {
              c.setTransactionIsolation(isolation);
            }
            if (oldWait != null) {
              try (Statement s = c.createStatement()) {
                s.execute("SET SESSION innodb_lock_wait_timeout = " + oldWait);
              }
            }
          }
        } catch (SQLException e) {
          if (clean) {
            throw e;
          }
        }
      }
    }
  }

  /** Whether a SQL failure is transient: lock wait timeout, deadlock, serialization failure, lost connection. */
  public static boolean isRetryable(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (c instanceof SQLException e) {
        for (SQLException n = e; n != null; n = n.getNextException()) {
          String state = n.getSQLState();
          int code = n.getErrorCode();
          if (state != null && (state.equals("40001") || state.equals("40P01") || state.equals("55P03")
              || state.startsWith("08") || state.equals("57014") || state.equals("HYT00"))) {
            return true;
          }
          if (code == 1205 || code == 1213) { // MySQL/MariaDB lock wait timeout, deadlock
            return true;
          }
          if (n instanceof java.sql.SQLTransientException || n instanceof java.sql.SQLRecoverableException) {
            return true;
          }
        }
      }
    }
    return false;
  }
}

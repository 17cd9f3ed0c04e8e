package io.kubetx.message;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.kubetx.barrier.Dialect;
import io.kubetx.proto.v1.CheckPreparedRequest;
import io.kubetx.proto.v1.CheckPreparedResponse.State;
import io.kubetx.testdb.TestDatabases;
import io.kubetx.testdb.TestDatabases.Db;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.sql.DataSource;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The outbox and its check-back, on real PostgreSQL and MariaDB servers. */
class OutboxTest {

  private static void schema(DataSource ds) throws SQLException {
    try (Connection c = ds.getConnection(); Statement s = c.createStatement()) {
      s.execute("CREATE TABLE accounts (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL)");
      s.execute("INSERT INTO accounts VALUES ('acc', 100000)");
    }
  }

  private static long balance(DataSource ds) throws SQLException {
    try (Connection c = ds.getConnection(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT balance FROM accounts")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static void debit(Connection tx, long amount) throws SQLException {
    try (PreparedStatement s = tx.prepareStatement("UPDATE accounts SET balance = balance - ? WHERE id = 'acc'")) {
      s.setLong(1, amount);
      s.executeUpdate();
    }
  }

  private static CheckPreparedRequest check(String uid) {
    return CheckPreparedRequest.newBuilder().setTransactionUid(uid).setNamespace("ns").setName("n").build();
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void checkBackAnswersFromTheRow(Dialect d) throws Exception {
    try (Db db = TestDatabases.of(d)) {
      schema(db.pool());
      Outbox o = Outbox.create(db.pool());
      String committed = UUID.randomUUID().toString();
      o.runLocal(new MessageKey(committed, "ns", "n"), tx -> {
        debit(tx, 10);
        return null;
      });
      assertEquals(State.STATE_COMMITTED, o.checkPrepared(check(committed)));
      assertEquals(State.STATE_COMMITTED, o.checkPrepared(check(committed)));
      assertEquals(99990, balance(db.pool()));

      String failed = UUID.randomUUID().toString();
      IllegalStateException boom = new IllegalStateException("boom");
      assertEquals(boom, assertThrows(IllegalStateException.class, () -> o.runLocal(new MessageKey(failed, "ns", "n"), tx -> {
        debit(tx, 10);
        throw boom;
      })));
      assertNull(o.state(failed));
      assertEquals(State.STATE_ROLLED_BACK, o.checkPrepared(check(failed)));
      assertEquals(99990, balance(db.pool()));

      // A check-back for a uid never prepared claims it: a late local transaction cannot commit.
      String unknown = UUID.randomUUID().toString();
      assertEquals(State.STATE_ROLLED_BACK, o.checkPrepared(check(unknown)));
      assertThrows(RolledBackException.class, () -> o.runLocal(new MessageKey(unknown, "ns", "n"), tx -> {
        debit(tx, 10);
        return null;
      }));
      assertEquals(99990, balance(db.pool()));
      assertEquals(State.STATE_ROLLED_BACK, o.checkPrepared(check(unknown)));

      // Preparing twice is an error; so is prepare outside a transaction.
      assertThrows(IllegalStateException.class, () -> o.runLocal(new MessageKey(committed, "ns", "n"), tx -> null));
      try (Connection c = db.pool().getConnection()) {
        assertThrows(IllegalStateException.class, () -> o.prepare(c, new MessageKey(UUID.randomUUID().toString(), "ns", "n")));
      }
      assertEquals(0, o.cleanup(Duration.ofDays(1)));
      Thread.sleep(5);
      assertEquals(3, o.cleanup(Duration.ZERO));
      assertNull(o.state(committed));
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void checkBackRacingTheLocalTransactionNeverContradictsIt(Dialect d) throws Exception {
    try (Db db = TestDatabases.of(d)) {
      schema(db.pool());
      Outbox o = Outbox.builder(db.pool()).lockTimeout(Duration.ofSeconds(10)).build();
      ExecutorService pool = Executors.newFixedThreadPool(32);
      int rounds = 100;
      int committedLocally = 0;
      try {
        List<Future<Boolean>> locals = new ArrayList<>();
        List<Future<State>> checks = new ArrayList<>();
        List<String> uids = new ArrayList<>();
        for (int i = 0; i < rounds; i++) {
          String uid = UUID.randomUUID().toString();
          uids.add(uid);
          CountDownLatch go = new CountDownLatch(1);
          int delay = i % 3;
          locals.add(pool.submit(() -> {
            go.await();
            try {
              o.runLocal(new MessageKey(uid, "ns", "n"), tx -> {
                debit(tx, 1);
                Thread.sleep(delay);
                return null;
              });
              return true;
            } catch (RolledBackException e) {
              return false;
            }
          }));
          checks.add(pool.submit(() -> {
            go.await();
            return o.checkPrepared(check(uid));
          }));
          go.countDown();
        }
        for (int i = 0; i < rounds; i++) {
          boolean local = locals.get(i).get();
          State state = checks.get(i).get();
          assertEquals(local ? State.STATE_COMMITTED : State.STATE_ROLLED_BACK, state, uids.get(i));
          assertEquals(state, o.checkPrepared(check(uids.get(i))), "the answer never changes");
          if (local) {
            committedLocally++;
          }
        }
      } finally {
        pool.shutdownNow();
      }
      assertEquals(100000 - committedLocally, balance(db.pool()), "debited once per committed message, never for a rolled-back one");
      assertEquals(0, o.cleanup(Duration.ofDays(1)));
      Thread.sleep(5);
      assertEquals(rounds, o.cleanup(Duration.ZERO));
    }
  }
}

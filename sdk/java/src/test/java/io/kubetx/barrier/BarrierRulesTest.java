package io.kubetx.barrier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.kubetx.participant.DataTooLargeException;
import io.kubetx.participant.InvalidPayloadException;
import io.kubetx.participant.RefusedException;
import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import io.kubetx.testdb.TestDatabases;
import io.kubetx.testdb.TestDatabases.Db;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The barrier rules, on real PostgreSQL and MariaDB servers. */
class BarrierRulesTest {

  private record Fixture(Db db, Barrier barrier, Bank bank) implements AutoCloseable {
    @Override
    public void close() {
      db.close();
    }
  }

  private static Fixture fixture(Dialect d) throws Exception {
    return fixture(d, Clock.systemUTC());
  }

  private static Fixture fixture(Dialect d, Clock clock) throws Exception {
    Db db = TestDatabases.of(d);
    Bank.schema(db.pool());
    Bank.open(db.pool(), "acc", 100);
    Barrier b = Barrier.builder(db.pool()).clock(clock).lockTimeout(Duration.ofSeconds(5)).build();
    assertEquals(d, b.dialect());
    return new Fixture(db, b, new Bank());
  }

  private static String uid() {
    return UUID.randomUUID().toString();
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void repeatedTryAnswersTheSameAndHoldsOnce(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 10);
      Barrier.Result first = f.barrier.run(Method.TRY, r, f.bank::onTry);
      Barrier.Result again = f.barrier.run(Method.TRY, r.withAttempt(2), f.bank::onTry);
      assertEquals(Outcome.EXECUTED, first.outcome());
      assertEquals(Outcome.DUPLICATE, again.outcome());
      assertEquals(first.response(), again.response());
      assertEquals("{\"amount\":10}", again.response().dataText());
      assertArrayEquals(new long[] {100, 10}, Bank.read(f.db.pool(), "acc"));
      assertEquals(1, f.bank.runs.get());
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void repeatedConfirmAndCancelApplyOnce(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 10);
      f.barrier.run(Method.TRY, r, f.bank::onTry);
      Barrier.Result c1 = f.barrier.run(Method.CONFIRM, r, f.bank::onConfirm);
      Barrier.Result c2 = f.barrier.run(Method.CONFIRM, r.withAttempt(2), f.bank::onConfirm);
      assertEquals(Outcome.EXECUTED, c1.outcome());
      assertEquals(Outcome.DUPLICATE, c2.outcome());
      assertEquals(c1.response(), c2.response());
      assertArrayEquals(new long[] {90, 0}, Bank.read(f.db.pool(), "acc"));

      Request r2 = Bank.request(uid(), "acc", 10);
      f.barrier.run(Method.TRY, r2, f.bank::onTry);
      Barrier.Result x1 = f.barrier.run(Method.CANCEL, r2, f.bank::onCancel);
      Barrier.Result x2 = f.barrier.run(Method.CANCEL, r2.withAttempt(2), f.bank::onCancel);
      assertEquals(Outcome.EXECUTED, x1.outcome());
      assertEquals(Outcome.DUPLICATE, x2.outcome());
      assertArrayEquals(new long[] {90, 0}, Bank.read(f.db.pool(), "acc"));
      assertEquals(4, f.bank.runs.get());
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void nullCompensationAndAntiHanging(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 10);
      Barrier.Result cancel = f.barrier.run(Method.CANCEL, r, f.bank::onCancel);
      assertEquals(Outcome.NULL_COMPENSATION, cancel.outcome());
      assertEquals(0, f.bank.runs.get(), "the Cancel handler must not run without a Try");
      assertEquals("blocker", f.barrier.get(r.transactionUid(), "b", Method.TRY).origin());
      assertEquals("call", f.barrier.get(r.transactionUid(), "b", Method.CANCEL).origin());
      // A repeat of the null compensation answers the same.
      assertEquals(Outcome.DUPLICATE, f.barrier.run(Method.CANCEL, r.withAttempt(2), f.bank::onCancel).outcome());

      RefusedException late = assertThrows(RefusedException.class, () -> f.barrier.run(Method.TRY, r, f.bank::onTry));
      assertEquals(Status.Code.ABORTED, late.code());
      assertTrue(late.getMessage().contains("anti-hanging"), late.getMessage());
      assertArrayEquals(new long[] {100, 0}, Bank.read(f.db.pool(), "acc"));
      assertEquals(0, f.bank.runs.get());

      // Saga: the same for Compensate before Execute.
      Request s = Bank.request(uid(), "acc", 10);
      assertEquals(Outcome.NULL_COMPENSATION, f.barrier.run(Method.COMPENSATE, s, f.bank::onCompensate).outcome());
      assertThrows(RefusedException.class, () -> f.barrier.run(Method.EXECUTE, s, f.bank::onExecute));
      assertArrayEquals(new long[] {100, 0}, Bank.read(f.db.pool(), "acc"));
      assertEquals(0, f.bank.runs.get());
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void protocolViolationsAreRefusedWithFailedPrecondition(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 10);
      RefusedException e = assertThrows(RefusedException.class, () -> f.barrier.run(Method.CONFIRM, r, f.bank::onConfirm));
      assertEquals(Status.Code.FAILED_PRECONDITION, e.code());
      assertNull(f.barrier.get(r.transactionUid(), "b", Method.CONFIRM), "a refused Confirm records nothing");

      // Cancel after Confirm, Confirm after Cancel.
      Request c = Bank.request(uid(), "acc", 10);
      f.barrier.run(Method.TRY, c, f.bank::onTry);
      f.barrier.run(Method.CONFIRM, c, f.bank::onConfirm);
      assertEquals(Status.Code.FAILED_PRECONDITION,
          assertThrows(RefusedException.class, () -> f.barrier.run(Method.CANCEL, c, f.bank::onCancel)).code());
      Request x = Bank.request(uid(), "acc", 10);
      f.barrier.run(Method.TRY, x, f.bank::onTry);
      f.barrier.run(Method.CANCEL, x, f.bank::onCancel);
      assertEquals(Status.Code.FAILED_PRECONDITION,
          assertThrows(RefusedException.class, () -> f.barrier.run(Method.CONFIRM, x, f.bank::onConfirm)).code());
      // Confirm after a null compensation (the Try row is a blocker).
      Request n = Bank.request(uid(), "acc", 10);
      f.barrier.run(Method.CANCEL, n, f.bank::onCancel);
      assertThrows(RefusedException.class, () -> f.barrier.run(Method.CONFIRM, n, f.bank::onConfirm));
      assertArrayEquals(new long[] {90, 0}, Bank.read(f.db.pool(), "acc"));

      // No uid or branch.
      Request bad = new Request("", "ns", "n", "b", "op", null, 1, null);
      assertThrows(RefusedException.class, () -> f.barrier.run(Method.TRY, bad, f.bank::onTry));
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void aFailingHandlerRecordsNothingAndTheRetryRunsClean(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 10);
      IllegalStateException boom = new IllegalStateException("boom");
      IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> f.barrier.run(Method.TRY, r, (tx, req) -> {
        f.bank.onTry(tx, req); // the effect happens, then the handler fails
        throw boom;
      }));
      assertSame(boom, thrown, "the handler's exception comes back unchanged");
      assertNull(f.barrier.get(r.transactionUid(), "b", Method.TRY));
      assertArrayEquals(new long[] {100, 0}, Bank.read(f.db.pool(), "acc"));

      // A refusal rolls back too.
      Request big = Bank.request(uid(), "acc", 1000);
      assertThrows(RefusedException.class, () -> f.barrier.run(Method.TRY, big, f.bank::onTry));
      assertNull(f.barrier.get(big.transactionUid(), "b", Method.TRY));
      // The Cancel after a refused Try is a null compensation.
      assertEquals(Outcome.NULL_COMPENSATION, f.barrier.run(Method.CANCEL, big, f.bank::onCancel).outcome());

      // The retry of the failed call runs the handler.
      assertEquals(Outcome.EXECUTED, f.barrier.run(Method.TRY, r.withAttempt(2), f.bank::onTry).outcome());
      assertArrayEquals(new long[] {100, 10}, Bank.read(f.db.pool(), "acc"));

      // Data over 4 KiB: INTERNAL, nothing recorded.
      Request large = Bank.request(uid(), "acc", 1);
      assertThrows(DataTooLargeException.class, () -> f.barrier.run(Method.TRY, large, (tx, req) -> {
        f.bank.onTry(tx, req);
        return Response.of("", new byte[Response.MAX_DATA_BYTES + 1]);
      }));
      assertNull(f.barrier.get(large.transactionUid(), "b", Method.TRY));
      assertArrayEquals(new long[] {100, 10}, Bank.read(f.db.pool(), "acc"));
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void runInTransactionCommitsWithTheCallersWork(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 10);
      try (Connection c = f.db.pool().getConnection()) {
        assertThrows(IllegalStateException.class, () -> f.barrier.runInTransaction(c, Method.TRY, r, f.bank::onTry),
            "auto-commit on is refused");
        c.setAutoCommit(false);
        c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
        // The caller's own write, then the barrier, then a rollback: nothing at all.
        try (Statement s = c.createStatement()) {
          s.executeUpdate("UPDATE accounts SET balance = balance + 1 WHERE id = 'acc'");
        }
        assertEquals(Outcome.EXECUTED, f.barrier.runInTransaction(c, Method.TRY, r, f.bank::onTry).outcome());
        c.rollback();
        assertNull(f.barrier.get(r.transactionUid(), "b", Method.TRY));
        assertArrayEquals(new long[] {100, 0}, Bank.read(f.db.pool(), "acc"));
        // Again, committed: both the caller's write and the barrier row.
        try (Statement s = c.createStatement()) {
          s.executeUpdate("UPDATE accounts SET balance = balance + 1 WHERE id = 'acc'");
        }
        assertEquals(Outcome.EXECUTED, f.barrier.runInTransaction(c, Method.TRY, r, f.bank::onTry).outcome());
        c.commit();
        assertEquals(Outcome.DUPLICATE, f.barrier.runInTransaction(c, Method.TRY, r, f.bank::onTry).outcome());
        c.commit();
        c.setAutoCommit(true);
      }
      assertNotNull(f.barrier.get(r.transactionUid(), "b", Method.TRY));
      assertArrayEquals(new long[] {101, 10}, Bank.read(f.db.pool(), "acc"));
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void deliverIsDeduplicatedAndSagaRunsOnce(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      Request r = Bank.request(uid(), "acc", 5);
      assertEquals(Outcome.EXECUTED, f.barrier.run(Method.DELIVER, r, f.bank::onDeliver).outcome());
      assertEquals(Outcome.DUPLICATE, f.barrier.run(Method.DELIVER, r.withAttempt(2), f.bank::onDeliver).outcome());
      assertArrayEquals(new long[] {105, 0}, Bank.read(f.db.pool(), "acc"));

      Request s = Bank.request(uid(), "acc", 10);
      Barrier.Result e1 = f.barrier.run(Method.EXECUTE, s, f.bank::onExecute);
      Barrier.Result e2 = f.barrier.run(Method.EXECUTE, s.withAttempt(2), f.bank::onExecute);
      assertEquals(e1.response(), e2.response());
      assertArrayEquals(new long[] {95, 0}, Bank.read(f.db.pool(), "acc"));
      Request comp = s.withResult(e1.response().data());
      assertEquals(Outcome.EXECUTED, f.barrier.run(Method.COMPENSATE, comp, f.bank::onCompensate).outcome());
      assertEquals(Outcome.DUPLICATE, f.barrier.run(Method.COMPENSATE, comp.withAttempt(2), f.bank::onCompensate).outcome());
      assertArrayEquals(new long[] {105, 0}, Bank.read(f.db.pool(), "acc"));
      assertEquals(3, f.bank.runs.get());
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void cleanupDeletesWholeTransactionsPastTheAge(Dialect d) throws Exception {
    AtomicReference<Instant> now = new AtomicReference<>(Instant.parse("2030-01-01T00:00:00Z"));
    Clock clock = new Clock() {
      @Override
      public java.time.ZoneId getZone() {
        return ZoneOffset.UTC;
      }

      @Override
      public Clock withZone(java.time.ZoneId zone) {
        return this;
      }

      @Override
      public Instant instant() {
        return now.get();
      }
    };
    try (Fixture f = fixture(d, clock)) {
      Request old = Bank.request(uid(), "acc", 1);
      f.barrier.run(Method.TRY, old, f.bank::onTry);
      now.set(now.get().plus(Duration.ofDays(3)));
      f.barrier.run(Method.CONFIRM, old, f.bank::onConfirm); // newest row 3 days later
      Request fresh = Bank.request(uid(), "acc", 1);
      now.set(now.get().plus(Duration.ofDays(5)));
      f.barrier.run(Method.TRY, fresh, f.bank::onTry);
      // 8 days after the first row, 5 after old's newest: a 6-day cleanup keeps everything.
      assertEquals(0, f.barrier.cleanup(Duration.ofDays(6)));
      assertEquals(2, f.barrier.cleanup(Duration.ofDays(4)));
      assertNull(f.barrier.get(old.transactionUid(), "b", Method.TRY));
      assertNotNull(f.barrier.get(fresh.transactionUid(), "b", Method.TRY));
      assertThrows(IllegalArgumentException.class, () -> f.barrier.cleanup(Duration.ofDays(-1)));
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void theTableHasTheSharedLayout(Dialect d) throws Exception {
    try (Fixture f = fixture(d)) {
      f.barrier.run(Method.TRY, Bank.request("u-layout", "acc", 1), f.bank::onTry);
      try (Connection c = f.db.pool().getConnection(); Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT uid, branch, method, origin, created_at, message, data FROM kubetx_barrier")) {
        assertTrue(rs.next());
        assertEquals("u-layout", rs.getString("uid"));
        assertEquals("Try", rs.getString("method"));
        assertEquals("call", rs.getString("origin"));
        assertTrue(rs.getLong("created_at") > 1_600_000_000_000L, "created_at is ms since the epoch");
        assertEquals("{\"amount\":1}", new String(rs.getBytes("data")));
      }
      // A second barrier on the same table (another process starting) is fine.
      Barrier.create(f.db.pool());
      if (d == Dialect.MYSQL) {
        Request longUid = Bank.request("x".repeat(65), "acc", 1);
        assertThrows(InvalidPayloadException.class, () -> f.barrier.run(Method.TRY, longUid, f.bank::onTry));
      }
      assertThrows(IllegalArgumentException.class, () -> Barrier.builder(f.db.pool()).table("x; DROP TABLE y"));
    }
  }
}

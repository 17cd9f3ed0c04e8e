package io.kubetx.barrier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kubetx.participant.RefusedException;
import io.kubetx.participant.Request;
import io.kubetx.testdb.TestDatabases;
import io.kubetx.testdb.TestDatabases.Db;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Races over real concurrent connections: every call on its own pooled connection and thread, as
 * calls arriving on several pods of one Service would.
 */
class BarrierConcurrencyTest {
  private static final int ROUNDS = 200;
  private static final int THREADS = 32;
  private static final int ACCOUNTS = 10;

  /** Runs a second-phase call until it answers (the operator retries any failure but a refusal). */
  private static Barrier.Result untilDone(Callable<Barrier.Result> call) throws Exception {
    Exception last = null;
    for (int i = 0; i < 50; i++) {
      try {
        return call.call();
      } catch (RefusedException e) {
        throw e;
      } catch (Exception e) {
        last = e; // a lock timeout or deadlock: retryable
        Thread.sleep(5);
      }
    }
    throw last;
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void tryRacingItsCancelLeavesNothingHeld(Dialect d) throws Exception {
    try (Db db = TestDatabases.of(d)) {
      Bank.schema(db.pool());
      for (int a = 0; a < ACCOUNTS; a++) {
        Bank.open(db.pool(), "acc" + a, 1_000_000);
      }
      Barrier b = Barrier.builder(db.pool()).lockTimeout(Duration.ofSeconds(10)).build();
      Bank bank = new Bank();
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      AtomicInteger tryOk = new AtomicInteger();
      AtomicInteger tryRefused = new AtomicInteger();
      AtomicInteger nullCompensations = new AtomicInteger();
      try {
        List<Future<?>> all = new ArrayList<>();
        for (int i = 0; i < ROUNDS; i++) {
          Request r = Bank.request(UUID.randomUUID().toString(), "acc" + (i % ACCOUNTS), 1);
          CountDownLatch go = new CountDownLatch(1);
          Callable<Object> tryCall = () -> {
            go.await();
            try {
              b.run(Method.TRY, r, bank::onTry);
              tryOk.incrementAndGet();
            } catch (RefusedException e) {
              tryRefused.incrementAndGet(); // its Cancel came first
            } catch (Exception e) {
              // retryable: the operator would retry, but the Cancel decides; a later Try would be refused
            }
            return null;
          };
          Callable<Object> cancelCall = () -> {
            go.await();
            Barrier.Result res = untilDone(() -> b.run(Method.CANCEL, r, bank::onCancel));
            if (res.outcome() == Outcome.NULL_COMPENSATION) {
              nullCompensations.incrementAndGet();
            }
            return null;
          };
          if (i % 2 == 0) {
            all.add(pool.submit(cancelCall));
            all.add(pool.submit(tryCall));
          } else {
            all.add(pool.submit(tryCall));
            all.add(pool.submit(cancelCall));
          }
          go.countDown();
        }
        for (Future<?> f : all) {
          f.get();
        }
      } finally {
        pool.shutdownNow();
      }
      for (int a = 0; a < ACCOUNTS; a++) {
        assertArrayEquals(new long[] {1_000_000, 0}, Bank.read(db.pool(), "acc" + a), "acc" + a + " after " + ROUNDS + " races");
      }
      assertEquals(0, Bank.count(db.pool(), "SELECT COUNT(*) FROM holds"), "holds left");
      // Every Try that committed was cancelled by a real Cancel, every other Cancel was a null compensation.
      assertEquals(ROUNDS, tryOk.get() + nullCompensations.get(),
          "tries ok " + tryOk + ", null compensations " + nullCompensations + ", refused " + tryRefused);
      System.out.printf("[%s] %d Try/Cancel races: %d Try ok, %d refused (anti-hanging), %d null compensations%n",
          db, ROUNDS, tryOk.get(), tryRefused.get(), nullCompensations.get());
    }
  }

  @ParameterizedTest
  @EnumSource(Dialect.class)
  void concurrentIdenticalConfirmsApplyOnce(Dialect d) throws Exception {
    try (Db db = TestDatabases.of(d)) {
      Bank.schema(db.pool());
      Bank.open(db.pool(), "acc", 1000);
      Barrier b = Barrier.builder(db.pool()).lockTimeout(Duration.ofSeconds(10)).build();
      Bank bank = new Bank();
      ExecutorService pool = Executors.newFixedThreadPool(16);
      try {
        for (int round = 0; round < 10; round++) {
          Request r = Bank.request(UUID.randomUUID().toString(), "acc", 10);
          b.run(Method.TRY, r, bank::onTry);
          int before = bank.runs.get();
          CountDownLatch go = new CountDownLatch(1);
          List<Future<Barrier.Result>> confirms = new ArrayList<>();
          for (int i = 0; i < 16; i++) {
            int attempt = i + 1;
            confirms.add(pool.submit(() -> {
              go.await();
              return untilDone(() -> b.run(Method.CONFIRM, r.withAttempt(attempt), bank::onConfirm));
            }));
          }
          go.countDown();
          int executed = 0;
          Barrier.Result first = null;
          for (Future<Barrier.Result> f : confirms) {
            Barrier.Result res = f.get();
            if (res.outcome() == Outcome.EXECUTED) {
              executed++;
            }
            if (first == null) {
              first = res;
            }
            assertEquals(first.response(), res.response(), "every Confirm answers the same");
          }
          assertEquals(1, executed, "exactly one Confirm ran");
          assertEquals(before + 1, bank.runs.get());
        }
      } finally {
        pool.shutdownNow();
      }
      assertArrayEquals(new long[] {900, 0}, Bank.read(db.pool(), "acc"));
      assertTrue(Bank.count(db.pool(), "SELECT COUNT(*) FROM kubetx_barrier WHERE method = 'Confirm'") == 10);
    }
  }
}

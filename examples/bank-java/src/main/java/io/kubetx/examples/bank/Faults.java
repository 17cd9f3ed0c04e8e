package io.kubetx.examples.bank;

import io.grpc.Status;
import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import io.kubetx.participant.SagaHandler;
import io.kubetx.participant.TccHandler;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Transient failures for tests (bank-go's faults.go): with probability rate/2 a call answers
 * UNAVAILABLE before doing anything, and with probability rate/2 it answers UNAVAILABLE after its
 * effect committed (the reply is "lost"). Both are retryable, so the operator calls again and the
 * barrier must answer the repeat without applying it twice.
 */
final class Faults {
  @FunctionalInterface
  interface Call {
    Response run() throws Exception;
  }

  private final double rate;
  private final SplittableRandom rng;
  private final Log log;

  Faults(double rate, long seed, Log log) {
    this.rate = rate;
    this.rng = new SplittableRandom(seed);
    this.log = log;
  }

  private synchronized boolean hit() {
    return rng.nextDouble() < rate / 2;
  }

  Response around(String method, Request r, Call call) throws Exception {
    if (hit()) {
      log.info("fault injected", Map.of("when", "before", "method", method, "uid", r.transactionUid(), "branch", r.branch(), "attempt", r.attempt()));
      throw Status.UNAVAILABLE.withDescription("injected fault (before the call)").asRuntimeException();
    }
    Response resp = call.run();
    if (hit()) {
      log.info("fault injected", Map.of("when", "after", "method", method, "uid", r.transactionUid(), "branch", r.branch(), "attempt", r.attempt()));
      throw Status.UNAVAILABLE.withDescription("injected fault (after the commit)").asRuntimeException();
    }
    return resp;
  }

  TccHandler tcc(TccHandler inner) {
    return new TccHandler() {
      @Override
      public Response onTry(Request r) throws Exception {
        return around("Try", r, () -> inner.onTry(r));
      }

      @Override
      public Response onConfirm(Request r) throws Exception {
        return around("Confirm", r, () -> inner.onConfirm(r));
      }

      @Override
      public Response onCancel(Request r) throws Exception {
        return around("Cancel", r, () -> inner.onCancel(r));
      }
    };
  }

  SagaHandler saga(SagaHandler inner) {
    return new SagaHandler() {
      @Override
      public Response onExecute(Request r) throws Exception {
        return around("Execute", r, () -> inner.onExecute(r));
      }

      @Override
      public Response onCompensate(Request r) throws Exception {
        return around("Compensate", r, () -> inner.onCompensate(r));
      }
    };
  }
}

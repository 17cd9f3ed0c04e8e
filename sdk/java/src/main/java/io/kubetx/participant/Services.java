package io.kubetx.participant;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.kubetx.proto.v1.BranchRequest;
import io.kubetx.proto.v1.BranchResponse;
import io.kubetx.proto.v1.CheckPreparedRequest;
import io.kubetx.proto.v1.CheckPreparedResponse;
import io.kubetx.proto.v1.MessageReceiverGrpc;
import io.kubetx.proto.v1.MessageSourceGrpc;
import io.kubetx.proto.v1.SagaParticipantGrpc;
import io.kubetx.proto.v1.TccParticipantGrpc;
import java.lang.System.Logger.Level;

/**
 * The gRPC services around the handlers: each call converts the request, runs the handler, enforces
 * {@link Response#MAX_DATA_BYTES}, maps an exception to its status ({@link Statuses}) and logs one
 * line (identity, attempt, outcome; never the payload).
 */
final class Services {
  private Services() {}

  @FunctionalInterface
  interface Call {
    Response run(Request r) throws Exception;
  }

  static void call(System.Logger log, String method, BranchRequest req, Call h, StreamObserver<BranchResponse> out) {
    long started = System.nanoTime();
    Request r = Request.fromProto(req);
    String who = "uid=" + r.transactionUid() + " namespace=" + r.namespace() + " name=" + r.name()
        + " branch=" + r.branch() + " method=" + method + " attempt=" + Integer.toUnsignedString(r.attempt())
        + " operation=" + r.operation();
    Response resp;
    try {
      resp = h.run(r);
      if (resp == null) {
        resp = Response.empty();
      }
      resp.checkData();
    } catch (Throwable t) {
      Status st = Statuses.of(t);
      long ms = (System.nanoTime() - started) / 1_000_000;
      switch (st.getCode()) {
        case ABORTED, FAILED_PRECONDITION ->
            log.log(Level.INFO, method + " refused " + who + " code=" + st.getCode() + " reason=" + st.getDescription() + " durationMs=" + ms);
        case INTERNAL -> log.log(Level.ERROR, method + " failed " + who + " code=" + st.getCode() + " durationMs=" + ms, t);
        default -> log.log(Level.WARNING, method + " failed " + who + " code=" + st.getCode() + " err=" + t + " durationMs=" + ms);
      }
      out.onError(st.asRuntimeException());
      return;
    }
    log.log(Level.INFO, method + " ok " + who + " durationMs=" + (System.nanoTime() - started) / 1_000_000);
    out.onNext(resp.toProto());
    out.onCompleted();
  }

  static final class Tcc extends TccParticipantGrpc.TccParticipantImplBase {
    private final TccHandler h;
    private final System.Logger log;

    Tcc(TccHandler h, System.Logger log) {
      this.h = h;
      this.log = log;
    }

    @Override
    public void try_(BranchRequest r, StreamObserver<BranchResponse> out) {
      call(log, "Try", r, h::onTry, out);
    }

    @Override
    public void confirm(BranchRequest r, StreamObserver<BranchResponse> out) {
      call(log, "Confirm", r, h::onConfirm, out);
    }

    @Override
    public void cancel(BranchRequest r, StreamObserver<BranchResponse> out) {
      call(log, "Cancel", r, h::onCancel, out);
    }
  }

  static final class Saga extends SagaParticipantGrpc.SagaParticipantImplBase {
    private final SagaHandler h;
    private final System.Logger log;

    Saga(SagaHandler h, System.Logger log) {
      this.h = h;
      this.log = log;
    }

    @Override
    public void execute(BranchRequest r, StreamObserver<BranchResponse> out) {
      call(log, "Execute", r, h::onExecute, out);
    }

    @Override
    public void compensate(BranchRequest r, StreamObserver<BranchResponse> out) {
      call(log, "Compensate", r, h::onCompensate, out);
    }
  }

  static final class Receiver extends MessageReceiverGrpc.MessageReceiverImplBase {
    private final ReceiverHandler h;
    private final System.Logger log;

    Receiver(ReceiverHandler h, System.Logger log) {
      this.h = h;
      this.log = log;
    }

    @Override
    public void deliver(BranchRequest r, StreamObserver<BranchResponse> out) {
      call(log, "Deliver", r, h::onDeliver, out);
    }
  }

  static final class Source extends MessageSourceGrpc.MessageSourceImplBase {
    private final MessageSource h;
    private final System.Logger log;

    Source(MessageSource h, System.Logger log) {
      this.h = h;
      this.log = log;
    }

    @Override
    public void checkPrepared(CheckPreparedRequest r, StreamObserver<CheckPreparedResponse> out) {
      String who = "uid=" + r.getTransactionUid() + " namespace=" + r.getNamespace() + " name=" + r.getName()
          + " method=CheckPrepared operation=" + r.getOperation();
      CheckPreparedResponse.State state;
      try {
        state = h.checkPrepared(r);
        if (state == null || state == CheckPreparedResponse.State.UNRECOGNIZED) {
          throw new IllegalStateException("CheckPrepared returned " + state + "; want COMMITTED, ROLLED_BACK or UNKNOWN");
        }
      } catch (Throwable t) {
        Status st = Statuses.of(t);
        log.log(Level.WARNING, "CheckPrepared failed " + who + " code=" + st.getCode() + " err=" + t);
        out.onError(st.asRuntimeException());
        return;
      }
      log.log(Level.INFO, "CheckPrepared ok " + who + " state=" + state);
      out.onNext(CheckPreparedResponse.newBuilder().setState(state).build());
      out.onCompleted();
    }
  }
}

package io.kubetx.participant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.kubetx.barrier.Barrier;
import io.kubetx.barrier.Dialect;
import io.kubetx.message.Outbox;
import io.kubetx.proto.v1.BranchRequest;
import io.kubetx.proto.v1.BranchResponse;
import io.kubetx.proto.v1.CheckPreparedRequest;
import io.kubetx.proto.v1.CheckPreparedResponse;
import io.kubetx.proto.v1.MessageReceiverGrpc;
import io.kubetx.proto.v1.MessageSourceGrpc;
import io.kubetx.proto.v1.SagaParticipantGrpc;
import io.kubetx.proto.v1.TccParticipantGrpc;
import io.kubetx.testdb.TestDatabases;
import io.kubetx.testdb.TestDatabases.Db;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The server and the status-code contract over a real gRPC channel. */
class ParticipantServerTest {
  private ParticipantServer server;
  private ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.shutdown();
    }
  }

  private ManagedChannel connect(ParticipantServer s) {
    channel = NettyChannelBuilder.forAddress("127.0.0.1", s.port()).usePlaintext().build();
    return channel;
  }

  private static BranchRequest req(String operation) {
    return BranchRequest.newBuilder().setTransactionUid(UUID.randomUUID().toString()).setNamespace("ns").setName("n")
        .setBranch("b").setOperation(operation).setPayload(ByteString.copyFromUtf8("{}")).setAttempt(1).build();
  }

  /** A handler whose behaviour is named by the request's operation. */
  private static Response behave(Request r) throws Exception {
    return switch (r.operation()) {
      case "ok" -> Response.of("done", "{\"id\":1}");
      case "null" -> null;
      case "refuse" -> throw new RefusedException("no funds");
      case "precondition" -> throw RefusedException.failedPrecondition("not like this");
      case "invalid" -> throw new InvalidPayloadException("bad payload");
      case "sql" -> throw new java.sql.SQLException("connection lost");
      case "runtime" -> throw new IllegalStateException("oops");
      case "wrapped" -> throw new java.util.concurrent.CompletionException(new RefusedException("wrapped no"));
      case "status" -> throw Status.NOT_FOUND.withDescription("gone").asRuntimeException();
      case "large" -> Response.of("", new byte[Response.MAX_DATA_BYTES + 1]);
      case "max" -> Response.of("", new byte[Response.MAX_DATA_BYTES]);
      case "error" -> throw new AssertionError("bug");
      default -> throw new IllegalArgumentException(r.operation());
    };
  }

  private static final class Behaving implements TccHandler, SagaHandler, ReceiverHandler {
    @Override
    public Response onTry(Request r) throws Exception {
      return behave(r);
    }

    @Override
    public Response onConfirm(Request r) throws Exception {
      return behave(r);
    }

    @Override
    public Response onCancel(Request r) throws Exception {
      return behave(r);
    }

    @Override
    public Response onExecute(Request r) throws Exception {
      return behave(r);
    }

    @Override
    public Response onCompensate(Request r) throws Exception {
      return behave(r);
    }

    @Override
    public Response onDeliver(Request r) throws Exception {
      return behave(r);
    }
  }

  private static Status.Code code(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  @Test
  void statusCodesOverARealChannel() {
    Behaving h = new Behaving();
    server = ParticipantServer.builder().host("127.0.0.1").port(0).tcc(h).saga(h).receiver(h).build().start();
    var tcc = TccParticipantGrpc.newBlockingStub(connect(server)).withDeadlineAfter(5, TimeUnit.SECONDS);
    var saga = SagaParticipantGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS);
    var recv = MessageReceiverGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS);

    BranchResponse ok = tcc.try_(req("ok"));
    assertEquals("done", ok.getMessage());
    assertEquals("{\"id\":1}", ok.getData().toStringUtf8());
    assertEquals(BranchResponse.getDefaultInstance(), tcc.confirm(req("null")));
    assertEquals(Response.MAX_DATA_BYTES, saga.execute(req("max")).getData().size());

    assertEquals(Status.Code.ABORTED, code(() -> tcc.try_(req("refuse"))));
    assertEquals(Status.Code.ABORTED, code(() -> saga.execute(req("wrapped"))));
    assertEquals(Status.Code.FAILED_PRECONDITION, code(() -> tcc.cancel(req("precondition"))));
    assertEquals(Status.Code.INVALID_ARGUMENT, code(() -> saga.compensate(req("invalid"))));
    assertEquals(Status.Code.UNAVAILABLE, code(() -> tcc.try_(req("sql"))));
    assertEquals(Status.Code.UNAVAILABLE, code(() -> recv.deliver(req("runtime"))));
    assertEquals(Status.Code.NOT_FOUND, code(() -> tcc.try_(req("status"))));
    assertEquals(Status.Code.INTERNAL, code(() -> saga.execute(req("large"))));
    assertEquals(Status.Code.INTERNAL, code(() -> tcc.try_(req("error"))));

    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class, () -> tcc.try_(req("refuse")));
    assertEquals("no funds", refused.getStatus().getDescription());

    // The server is still up after all that.
    assertEquals("done", tcc.try_(req("ok")).getMessage());
  }

  @Test
  void healthUnimplementedServicesAndExtraServices() {
    Behaving h = new Behaving();
    // An extra service: a MessageReceiver beside the TCC service, added as a plain BindableService.
    server = ParticipantServer.builder().address("127.0.0.1:0").tcc(h)
        .addService(new MessageReceiverGrpc.MessageReceiverImplBase() {
          @Override
          public void deliver(BranchRequest r, io.grpc.stub.StreamObserver<BranchResponse> out) {
            out.onNext(BranchResponse.newBuilder().setMessage("extra").build());
            out.onCompleted();
          }
        })
        .build().start();
    var health = HealthGrpc.newBlockingStub(connect(server));
    assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder().build()).getStatus());
    assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder().setService("kubetx.v1.TccParticipant").build()).getStatus());
    assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder().setService("kubetx.v1.MessageReceiver").build()).getStatus());
    assertEquals("extra", MessageReceiverGrpc.newBlockingStub(channel).deliver(req("ok")).getMessage());
    assertEquals(Status.Code.UNIMPLEMENTED, code(() -> SagaParticipantGrpc.newBlockingStub(channel).execute(req("ok"))));
    assertThrows(IllegalStateException.class, () -> ParticipantServer.builder().build());
  }

  @Test
  void shutdownWaitsForCallsInFlightUpToTheGrace() throws Exception {
    CountDownLatch entered = new CountDownLatch(2);
    TccHandler slow = new TccHandler() {
      @Override
      public Response onTry(Request r) throws Exception {
        entered.countDown();
        Thread.sleep(r.operation().equals("short") ? 300 : 60_000);
        return Response.of("finished");
      }

      @Override
      public Response onConfirm(Request r) {
        return null;
      }

      @Override
      public Response onCancel(Request r) {
        return null;
      }
    };
    server = ParticipantServer.builder().port(0).tcc(slow).shutdownGrace(Duration.ofSeconds(1)).build().start();
    var stub = TccParticipantGrpc.newFutureStub(connect(server));
    var shortCall = stub.try_(req("short"));
    var longCall = stub.try_(req("long"));
    assertTrue(entered.await(5, TimeUnit.SECONDS));
    long started = System.nanoTime();
    server.shutdown();
    long ms = (System.nanoTime() - started) / 1_000_000;
    assertEquals("finished", shortCall.get(5, TimeUnit.SECONDS).getMessage(), "a call in flight finishes within the grace");
    assertTrue(ms >= 900 && ms < 8_000, "shutdown took " + ms + " ms, want about the 1 s grace");
    var err = assertThrows(java.util.concurrent.ExecutionException.class, () -> longCall.get(5, TimeUnit.SECONDS));
    assertTrue(err.getCause() instanceof StatusRuntimeException, err.toString());
    server.shutdown(); // twice is fine
  }

  @Test
  void barrierAndOutboxBehindTheServerOnPostgres() throws Exception {
    try (Db db = TestDatabases.of(Dialect.POSTGRES)) {
      try (Connection c = db.pool().getConnection(); Statement s = c.createStatement()) {
        s.execute("CREATE TABLE holds (uid text PRIMARY KEY, amount bigint NOT NULL)");
      }
      Barrier b = Barrier.create(db.pool());
      Outbox outbox = Outbox.create(db.pool());
      server = ParticipantServer.builder().port(0).source(outbox).tcc(b.tcc(new io.kubetx.barrier.TxTcc() {
        @Override
        public Response onTry(Connection tx, Request r) throws Exception {
          try (PreparedStatement s = tx.prepareStatement("INSERT INTO holds VALUES (?, 10)")) {
            s.setString(1, r.transactionUid());
            s.executeUpdate();
          }
          return Response.of("held", "{\"hold\":\"" + r.transactionUid() + "\"}");
        }

        @Override
        public Response onConfirm(Connection tx, Request r) {
          return Response.of("confirmed");
        }

        @Override
        public Response onCancel(Connection tx, Request r) throws Exception {
          try (PreparedStatement s = tx.prepareStatement("DELETE FROM holds WHERE uid = ?")) {
            s.setString(1, r.transactionUid());
            s.executeUpdate();
          }
          return null;
        }
      })).build().start();
      var tcc = TccParticipantGrpc.newBlockingStub(connect(server)).withDeadlineAfter(10, TimeUnit.SECONDS);
      BranchRequest r = req("op");
      BranchResponse first = tcc.try_(r);
      BranchResponse again = tcc.try_(r.toBuilder().setAttempt(2).build());
      assertEquals(first, again);
      assertEquals(Status.Code.FAILED_PRECONDITION, code(() -> tcc.confirm(req("op"))), "Confirm without Try");
      BranchRequest late = req("op");
      assertTrue(tcc.cancel(late).getMessage().startsWith("null compensation"));
      assertEquals(Status.Code.ABORTED, code(() -> tcc.try_(late)), "anti-hanging");
      try (Connection c = db.pool().getConnection(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM holds")) {
        rs.next();
        assertEquals(1, rs.getInt(1));
      }
      var src = MessageSourceGrpc.newBlockingStub(channel);
      assertEquals(CheckPreparedResponse.State.STATE_ROLLED_BACK,
          src.checkPrepared(CheckPreparedRequest.newBuilder().setTransactionUid("never").build()).getState());
      assertEquals(Status.Code.INVALID_ARGUMENT, code(() -> src.checkPrepared(CheckPreparedRequest.getDefaultInstance())));
    }
  }

  @Test
  void statusesMapping() {
    assertEquals(Status.Code.OK, Statuses.of(null).getCode());
    assertEquals(Status.Code.ABORTED, Statuses.of(new RefusedException("x", Status.Code.NOT_FOUND)).getCode(), "other codes become ABORTED");
    assertEquals(Status.Code.INTERNAL, Statuses.of(new DataTooLargeException(5000)).getCode());
    assertEquals(Status.Code.UNAVAILABLE, Statuses.of(new RuntimeException()).getCode());
  }
}

package io.kubetx.examples.bank;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.kubetx.proto.conformance.v1.ConformanceHookGrpc;
import io.kubetx.proto.conformance.v1.OpenAccountRequest;
import io.kubetx.proto.conformance.v1.OpenAccountResponse;
import io.kubetx.proto.conformance.v1.ReadAccountRequest;
import io.kubetx.proto.conformance.v1.ReadAccountResponse;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import javax.sql.DataSource;

/**
 * The conformance kit's test hook (proto/kubetx/conformance/v1/hook.proto) on the accounts table.
 * Served only with --conformance-hook: it opens accounts and sets balances, which no production
 * bank should let a caller do. PrepareMessage stays UNIMPLEMENTED: the bank is not a message source.
 */
final class Hook extends ConformanceHookGrpc.ConformanceHookImplBase {
  private final DataSource ds;

  Hook(DataSource ds) {
    this.ds = ds;
  }

  @Override
  public void openAccount(OpenAccountRequest req, StreamObserver<OpenAccountResponse> out) {
    if (req.getAccount().isEmpty() || req.getBalance() < 0) {
      out.onError(Status.INVALID_ARGUMENT.withDescription("account must be named and balance must not be negative").asRuntimeException());
      return;
    }
    try (Connection c = ds.getConnection(); PreparedStatement s = c.prepareStatement(
        "INSERT INTO accounts (id, balance, held) VALUES (?, ?, 0) ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance, held = 0")) {
      s.setString(1, req.getAccount());
      s.setLong(2, req.getBalance());
      s.executeUpdate();
    } catch (SQLException e) {
      out.onError(Status.UNAVAILABLE.withDescription("open account: " + e.getMessage()).asRuntimeException());
      return;
    }
    out.onNext(OpenAccountResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void readAccount(ReadAccountRequest req, StreamObserver<ReadAccountResponse> out) {
    ReadAccountResponse.Builder resp = ReadAccountResponse.newBuilder();
    try (Connection c = ds.getConnection(); PreparedStatement s = c.prepareStatement("SELECT balance, held FROM accounts WHERE id = ?")) {
      s.setString(1, req.getAccount());
      try (ResultSet rs = s.executeQuery()) {
        if (rs.next()) {
          resp.setFound(true).setBalance(rs.getLong(1)).setHeld(rs.getLong(2));
        }
      }
    } catch (SQLException e) {
      out.onError(Status.UNAVAILABLE.withDescription("read account: " + e.getMessage()).asRuntimeException());
      return;
    }
    out.onNext(resp.build());
    out.onCompleted();
  }
}

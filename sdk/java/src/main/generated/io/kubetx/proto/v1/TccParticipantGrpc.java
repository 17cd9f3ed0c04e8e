package io.kubetx.proto.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * TCC participant: Try reserves, Confirm makes the reservation effective,
 * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
 * may arrive after its Cancel (refuse it).
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class TccParticipantGrpc {

  private TccParticipantGrpc() {}

  public static final java.lang.String SERVICE_NAME = "kubetx.v1.TccParticipant";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getTryMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Try",
      requestType = io.kubetx.proto.v1.BranchRequest.class,
      responseType = io.kubetx.proto.v1.BranchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getTryMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse> getTryMethod;
    if ((getTryMethod = TccParticipantGrpc.getTryMethod) == null) {
      synchronized (TccParticipantGrpc.class) {
        if ((getTryMethod = TccParticipantGrpc.getTryMethod) == null) {
          TccParticipantGrpc.getTryMethod = getTryMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Try"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new TccParticipantMethodDescriptorSupplier("Try"))
              .build();
        }
      }
    }
    return getTryMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getConfirmMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Confirm",
      requestType = io.kubetx.proto.v1.BranchRequest.class,
      responseType = io.kubetx.proto.v1.BranchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getConfirmMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse> getConfirmMethod;
    if ((getConfirmMethod = TccParticipantGrpc.getConfirmMethod) == null) {
      synchronized (TccParticipantGrpc.class) {
        if ((getConfirmMethod = TccParticipantGrpc.getConfirmMethod) == null) {
          TccParticipantGrpc.getConfirmMethod = getConfirmMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Confirm"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new TccParticipantMethodDescriptorSupplier("Confirm"))
              .build();
        }
      }
    }
    return getConfirmMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getCancelMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Cancel",
      requestType = io.kubetx.proto.v1.BranchRequest.class,
      responseType = io.kubetx.proto.v1.BranchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getCancelMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse> getCancelMethod;
    if ((getCancelMethod = TccParticipantGrpc.getCancelMethod) == null) {
      synchronized (TccParticipantGrpc.class) {
        if ((getCancelMethod = TccParticipantGrpc.getCancelMethod) == null) {
          TccParticipantGrpc.getCancelMethod = getCancelMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Cancel"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new TccParticipantMethodDescriptorSupplier("Cancel"))
              .build();
        }
      }
    }
    return getCancelMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static TccParticipantStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<TccParticipantStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<TccParticipantStub>() {
        @java.lang.Override
        public TccParticipantStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new TccParticipantStub(channel, callOptions);
        }
      };
    return TccParticipantStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static TccParticipantBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<TccParticipantBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<TccParticipantBlockingV2Stub>() {
        @java.lang.Override
        public TccParticipantBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new TccParticipantBlockingV2Stub(channel, callOptions);
        }
      };
    return TccParticipantBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static TccParticipantBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<TccParticipantBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<TccParticipantBlockingStub>() {
        @java.lang.Override
        public TccParticipantBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new TccParticipantBlockingStub(channel, callOptions);
        }
      };
    return TccParticipantBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static TccParticipantFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<TccParticipantFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<TccParticipantFutureStub>() {
        @java.lang.Override
        public TccParticipantFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new TccParticipantFutureStub(channel, callOptions);
        }
      };
    return TccParticipantFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * TCC participant: Try reserves, Confirm makes the reservation effective,
   * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
   * may arrive after its Cancel (refuse it).
   * </pre>
   */
  public interface AsyncService {

    /**
     */
    default void try_(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getTryMethod(), responseObserver);
    }

    /**
     */
    default void confirm(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getConfirmMethod(), responseObserver);
    }

    /**
     */
    default void cancel(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCancelMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service TccParticipant.
   * <pre>
   * TCC participant: Try reserves, Confirm makes the reservation effective,
   * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
   * may arrive after its Cancel (refuse it).
   * </pre>
   */
  public static abstract class TccParticipantImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return TccParticipantGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service TccParticipant.
   * <pre>
   * TCC participant: Try reserves, Confirm makes the reservation effective,
   * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
   * may arrive after its Cancel (refuse it).
   * </pre>
   */
  public static final class TccParticipantStub
      extends io.grpc.stub.AbstractAsyncStub<TccParticipantStub> {
    private TccParticipantStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected TccParticipantStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new TccParticipantStub(channel, callOptions);
    }

    /**
     */
    public void try_(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getTryMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     */
    public void confirm(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getConfirmMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     */
    public void cancel(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCancelMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service TccParticipant.
   * <pre>
   * TCC participant: Try reserves, Confirm makes the reservation effective,
   * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
   * may arrive after its Cancel (refuse it).
   * </pre>
   */
  public static final class TccParticipantBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<TccParticipantBlockingV2Stub> {
    private TccParticipantBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected TccParticipantBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new TccParticipantBlockingV2Stub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse try_(io.kubetx.proto.v1.BranchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getTryMethod(), getCallOptions(), request);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse confirm(io.kubetx.proto.v1.BranchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getConfirmMethod(), getCallOptions(), request);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse cancel(io.kubetx.proto.v1.BranchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCancelMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service TccParticipant.
   * <pre>
   * TCC participant: Try reserves, Confirm makes the reservation effective,
   * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
   * may arrive after its Cancel (refuse it).
   * </pre>
   */
  public static final class TccParticipantBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<TccParticipantBlockingStub> {
    private TccParticipantBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected TccParticipantBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new TccParticipantBlockingStub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse try_(io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getTryMethod(), getCallOptions(), request);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse confirm(io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getConfirmMethod(), getCallOptions(), request);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse cancel(io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCancelMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service TccParticipant.
   * <pre>
   * TCC participant: Try reserves, Confirm makes the reservation effective,
   * Cancel releases it. Cancel may arrive without a Try (answer OK), and a Try
   * may arrive after its Cancel (refuse it).
   * </pre>
   */
  public static final class TccParticipantFutureStub
      extends io.grpc.stub.AbstractFutureStub<TccParticipantFutureStub> {
    private TccParticipantFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected TccParticipantFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new TccParticipantFutureStub(channel, callOptions);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.BranchResponse> try_(
        io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getTryMethod(), getCallOptions()), request);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.BranchResponse> confirm(
        io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getConfirmMethod(), getCallOptions()), request);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.BranchResponse> cancel(
        io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCancelMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_TRY = 0;
  private static final int METHODID_CONFIRM = 1;
  private static final int METHODID_CANCEL = 2;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_TRY:
          serviceImpl.try_((io.kubetx.proto.v1.BranchRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse>) responseObserver);
          break;
        case METHODID_CONFIRM:
          serviceImpl.confirm((io.kubetx.proto.v1.BranchRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse>) responseObserver);
          break;
        case METHODID_CANCEL:
          serviceImpl.cancel((io.kubetx.proto.v1.BranchRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getTryMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.BranchRequest,
              io.kubetx.proto.v1.BranchResponse>(
                service, METHODID_TRY)))
        .addMethod(
          getConfirmMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.BranchRequest,
              io.kubetx.proto.v1.BranchResponse>(
                service, METHODID_CONFIRM)))
        .addMethod(
          getCancelMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.BranchRequest,
              io.kubetx.proto.v1.BranchResponse>(
                service, METHODID_CANCEL)))
        .build();
  }

  private static abstract class TccParticipantBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    TccParticipantBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.kubetx.proto.v1.ParticipantProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("TccParticipant");
    }
  }

  private static final class TccParticipantFileDescriptorSupplier
      extends TccParticipantBaseDescriptorSupplier {
    TccParticipantFileDescriptorSupplier() {}
  }

  private static final class TccParticipantMethodDescriptorSupplier
      extends TccParticipantBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    TccParticipantMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (TccParticipantGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new TccParticipantFileDescriptorSupplier())
              .addMethod(getTryMethod())
              .addMethod(getConfirmMethod())
              .addMethod(getCancelMethod())
              .build();
        }
      }
    }
    return result;
  }
}

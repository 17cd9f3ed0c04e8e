package io.kubetx.proto.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Saga participant: Execute does the work, Compensate undoes it.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class SagaParticipantGrpc {

  private SagaParticipantGrpc() {}

  public static final java.lang.String SERVICE_NAME = "kubetx.v1.SagaParticipant";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getExecuteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Execute",
      requestType = io.kubetx.proto.v1.BranchRequest.class,
      responseType = io.kubetx.proto.v1.BranchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getExecuteMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse> getExecuteMethod;
    if ((getExecuteMethod = SagaParticipantGrpc.getExecuteMethod) == null) {
      synchronized (SagaParticipantGrpc.class) {
        if ((getExecuteMethod = SagaParticipantGrpc.getExecuteMethod) == null) {
          SagaParticipantGrpc.getExecuteMethod = getExecuteMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Execute"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SagaParticipantMethodDescriptorSupplier("Execute"))
              .build();
        }
      }
    }
    return getExecuteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getCompensateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Compensate",
      requestType = io.kubetx.proto.v1.BranchRequest.class,
      responseType = io.kubetx.proto.v1.BranchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getCompensateMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse> getCompensateMethod;
    if ((getCompensateMethod = SagaParticipantGrpc.getCompensateMethod) == null) {
      synchronized (SagaParticipantGrpc.class) {
        if ((getCompensateMethod = SagaParticipantGrpc.getCompensateMethod) == null) {
          SagaParticipantGrpc.getCompensateMethod = getCompensateMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Compensate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SagaParticipantMethodDescriptorSupplier("Compensate"))
              .build();
        }
      }
    }
    return getCompensateMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static SagaParticipantStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SagaParticipantStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SagaParticipantStub>() {
        @java.lang.Override
        public SagaParticipantStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SagaParticipantStub(channel, callOptions);
        }
      };
    return SagaParticipantStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static SagaParticipantBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SagaParticipantBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SagaParticipantBlockingV2Stub>() {
        @java.lang.Override
        public SagaParticipantBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SagaParticipantBlockingV2Stub(channel, callOptions);
        }
      };
    return SagaParticipantBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static SagaParticipantBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SagaParticipantBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SagaParticipantBlockingStub>() {
        @java.lang.Override
        public SagaParticipantBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SagaParticipantBlockingStub(channel, callOptions);
        }
      };
    return SagaParticipantBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static SagaParticipantFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SagaParticipantFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SagaParticipantFutureStub>() {
        @java.lang.Override
        public SagaParticipantFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SagaParticipantFutureStub(channel, callOptions);
        }
      };
    return SagaParticipantFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Saga participant: Execute does the work, Compensate undoes it.
   * </pre>
   */
  public interface AsyncService {

    /**
     */
    default void execute(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getExecuteMethod(), responseObserver);
    }

    /**
     */
    default void compensate(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCompensateMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service SagaParticipant.
   * <pre>
   * Saga participant: Execute does the work, Compensate undoes it.
   * </pre>
   */
  public static abstract class SagaParticipantImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return SagaParticipantGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service SagaParticipant.
   * <pre>
   * Saga participant: Execute does the work, Compensate undoes it.
   * </pre>
   */
  public static final class SagaParticipantStub
      extends io.grpc.stub.AbstractAsyncStub<SagaParticipantStub> {
    private SagaParticipantStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SagaParticipantStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SagaParticipantStub(channel, callOptions);
    }

    /**
     */
    public void execute(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getExecuteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     */
    public void compensate(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCompensateMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service SagaParticipant.
   * <pre>
   * Saga participant: Execute does the work, Compensate undoes it.
   * </pre>
   */
  public static final class SagaParticipantBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<SagaParticipantBlockingV2Stub> {
    private SagaParticipantBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SagaParticipantBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SagaParticipantBlockingV2Stub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse execute(io.kubetx.proto.v1.BranchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getExecuteMethod(), getCallOptions(), request);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse compensate(io.kubetx.proto.v1.BranchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCompensateMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service SagaParticipant.
   * <pre>
   * Saga participant: Execute does the work, Compensate undoes it.
   * </pre>
   */
  public static final class SagaParticipantBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<SagaParticipantBlockingStub> {
    private SagaParticipantBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SagaParticipantBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SagaParticipantBlockingStub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse execute(io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getExecuteMethod(), getCallOptions(), request);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse compensate(io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCompensateMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service SagaParticipant.
   * <pre>
   * Saga participant: Execute does the work, Compensate undoes it.
   * </pre>
   */
  public static final class SagaParticipantFutureStub
      extends io.grpc.stub.AbstractFutureStub<SagaParticipantFutureStub> {
    private SagaParticipantFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SagaParticipantFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SagaParticipantFutureStub(channel, callOptions);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.BranchResponse> execute(
        io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getExecuteMethod(), getCallOptions()), request);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.BranchResponse> compensate(
        io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCompensateMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_EXECUTE = 0;
  private static final int METHODID_COMPENSATE = 1;

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
        case METHODID_EXECUTE:
          serviceImpl.execute((io.kubetx.proto.v1.BranchRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse>) responseObserver);
          break;
        case METHODID_COMPENSATE:
          serviceImpl.compensate((io.kubetx.proto.v1.BranchRequest) request,
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
          getExecuteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.BranchRequest,
              io.kubetx.proto.v1.BranchResponse>(
                service, METHODID_EXECUTE)))
        .addMethod(
          getCompensateMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.BranchRequest,
              io.kubetx.proto.v1.BranchResponse>(
                service, METHODID_COMPENSATE)))
        .build();
  }

  private static abstract class SagaParticipantBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    SagaParticipantBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.kubetx.proto.v1.ParticipantProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("SagaParticipant");
    }
  }

  private static final class SagaParticipantFileDescriptorSupplier
      extends SagaParticipantBaseDescriptorSupplier {
    SagaParticipantFileDescriptorSupplier() {}
  }

  private static final class SagaParticipantMethodDescriptorSupplier
      extends SagaParticipantBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    SagaParticipantMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (SagaParticipantGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new SagaParticipantFileDescriptorSupplier())
              .addMethod(getExecuteMethod())
              .addMethod(getCompensateMethod())
              .build();
        }
      }
    }
    return result;
  }
}

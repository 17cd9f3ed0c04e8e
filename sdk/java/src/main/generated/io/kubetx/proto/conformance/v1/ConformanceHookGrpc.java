package io.kubetx.proto.conformance.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ConformanceHookGrpc {

  private ConformanceHookGrpc() {}

  public static final java.lang.String SERVICE_NAME = "kubetx.conformance.v1.ConformanceHook";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.OpenAccountRequest,
      io.kubetx.proto.conformance.v1.OpenAccountResponse> getOpenAccountMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "OpenAccount",
      requestType = io.kubetx.proto.conformance.v1.OpenAccountRequest.class,
      responseType = io.kubetx.proto.conformance.v1.OpenAccountResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.OpenAccountRequest,
      io.kubetx.proto.conformance.v1.OpenAccountResponse> getOpenAccountMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.OpenAccountRequest, io.kubetx.proto.conformance.v1.OpenAccountResponse> getOpenAccountMethod;
    if ((getOpenAccountMethod = ConformanceHookGrpc.getOpenAccountMethod) == null) {
      synchronized (ConformanceHookGrpc.class) {
        if ((getOpenAccountMethod = ConformanceHookGrpc.getOpenAccountMethod) == null) {
          ConformanceHookGrpc.getOpenAccountMethod = getOpenAccountMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.conformance.v1.OpenAccountRequest, io.kubetx.proto.conformance.v1.OpenAccountResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "OpenAccount"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.conformance.v1.OpenAccountRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.conformance.v1.OpenAccountResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConformanceHookMethodDescriptorSupplier("OpenAccount"))
              .build();
        }
      }
    }
    return getOpenAccountMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.ReadAccountRequest,
      io.kubetx.proto.conformance.v1.ReadAccountResponse> getReadAccountMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ReadAccount",
      requestType = io.kubetx.proto.conformance.v1.ReadAccountRequest.class,
      responseType = io.kubetx.proto.conformance.v1.ReadAccountResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.ReadAccountRequest,
      io.kubetx.proto.conformance.v1.ReadAccountResponse> getReadAccountMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.ReadAccountRequest, io.kubetx.proto.conformance.v1.ReadAccountResponse> getReadAccountMethod;
    if ((getReadAccountMethod = ConformanceHookGrpc.getReadAccountMethod) == null) {
      synchronized (ConformanceHookGrpc.class) {
        if ((getReadAccountMethod = ConformanceHookGrpc.getReadAccountMethod) == null) {
          ConformanceHookGrpc.getReadAccountMethod = getReadAccountMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.conformance.v1.ReadAccountRequest, io.kubetx.proto.conformance.v1.ReadAccountResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ReadAccount"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.conformance.v1.ReadAccountRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.conformance.v1.ReadAccountResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConformanceHookMethodDescriptorSupplier("ReadAccount"))
              .build();
        }
      }
    }
    return getReadAccountMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.PrepareMessageRequest,
      io.kubetx.proto.conformance.v1.PrepareMessageResponse> getPrepareMessageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PrepareMessage",
      requestType = io.kubetx.proto.conformance.v1.PrepareMessageRequest.class,
      responseType = io.kubetx.proto.conformance.v1.PrepareMessageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.PrepareMessageRequest,
      io.kubetx.proto.conformance.v1.PrepareMessageResponse> getPrepareMessageMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.conformance.v1.PrepareMessageRequest, io.kubetx.proto.conformance.v1.PrepareMessageResponse> getPrepareMessageMethod;
    if ((getPrepareMessageMethod = ConformanceHookGrpc.getPrepareMessageMethod) == null) {
      synchronized (ConformanceHookGrpc.class) {
        if ((getPrepareMessageMethod = ConformanceHookGrpc.getPrepareMessageMethod) == null) {
          ConformanceHookGrpc.getPrepareMessageMethod = getPrepareMessageMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.conformance.v1.PrepareMessageRequest, io.kubetx.proto.conformance.v1.PrepareMessageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PrepareMessage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.conformance.v1.PrepareMessageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.conformance.v1.PrepareMessageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConformanceHookMethodDescriptorSupplier("PrepareMessage"))
              .build();
        }
      }
    }
    return getPrepareMessageMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ConformanceHookStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConformanceHookStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConformanceHookStub>() {
        @java.lang.Override
        public ConformanceHookStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConformanceHookStub(channel, callOptions);
        }
      };
    return ConformanceHookStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ConformanceHookBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConformanceHookBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConformanceHookBlockingV2Stub>() {
        @java.lang.Override
        public ConformanceHookBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConformanceHookBlockingV2Stub(channel, callOptions);
        }
      };
    return ConformanceHookBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ConformanceHookBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConformanceHookBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConformanceHookBlockingStub>() {
        @java.lang.Override
        public ConformanceHookBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConformanceHookBlockingStub(channel, callOptions);
        }
      };
    return ConformanceHookBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ConformanceHookFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConformanceHookFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConformanceHookFutureStub>() {
        @java.lang.Override
        public ConformanceHookFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConformanceHookFutureStub(channel, callOptions);
        }
      };
    return ConformanceHookFutureStub.newStub(factory, channel);
  }

  /**
   */
  public interface AsyncService {

    /**
     * <pre>
     * Creates the account, or resets an existing one, with this balance and nothing held.
     * </pre>
     */
    default void openAccount(io.kubetx.proto.conformance.v1.OpenAccountRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.OpenAccountResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getOpenAccountMethod(), responseObserver);
    }

    /**
     * <pre>
     * Reads an account back from the participant's own store.
     * </pre>
     */
    default void readAccount(io.kubetx.proto.conformance.v1.ReadAccountRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.ReadAccountResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getReadAccountMethod(), responseObserver);
    }

    /**
     * <pre>
     * For a MessageSource: runs the business operation of a reliable message in
     * one local transaction: balance -= amount and the prepared message for
     * `transaction_uid` recorded together (the SDK's upstream helper), then
     * commits it (`commit` true) or rolls it back. Answers FAILED_PRECONDITION
     * when the message can no longer be prepared because CheckPrepared already
     * answered ROLLED_BACK for that uid; the account is then unchanged.
     * </pre>
     */
    default void prepareMessage(io.kubetx.proto.conformance.v1.PrepareMessageRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.PrepareMessageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPrepareMessageMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service ConformanceHook.
   */
  public static abstract class ConformanceHookImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ConformanceHookGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service ConformanceHook.
   */
  public static final class ConformanceHookStub
      extends io.grpc.stub.AbstractAsyncStub<ConformanceHookStub> {
    private ConformanceHookStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConformanceHookStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConformanceHookStub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates the account, or resets an existing one, with this balance and nothing held.
     * </pre>
     */
    public void openAccount(io.kubetx.proto.conformance.v1.OpenAccountRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.OpenAccountResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getOpenAccountMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Reads an account back from the participant's own store.
     * </pre>
     */
    public void readAccount(io.kubetx.proto.conformance.v1.ReadAccountRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.ReadAccountResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getReadAccountMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * For a MessageSource: runs the business operation of a reliable message in
     * one local transaction: balance -= amount and the prepared message for
     * `transaction_uid` recorded together (the SDK's upstream helper), then
     * commits it (`commit` true) or rolls it back. Answers FAILED_PRECONDITION
     * when the message can no longer be prepared because CheckPrepared already
     * answered ROLLED_BACK for that uid; the account is then unchanged.
     * </pre>
     */
    public void prepareMessage(io.kubetx.proto.conformance.v1.PrepareMessageRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.PrepareMessageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPrepareMessageMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service ConformanceHook.
   */
  public static final class ConformanceHookBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ConformanceHookBlockingV2Stub> {
    private ConformanceHookBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConformanceHookBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConformanceHookBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates the account, or resets an existing one, with this balance and nothing held.
     * </pre>
     */
    public io.kubetx.proto.conformance.v1.OpenAccountResponse openAccount(io.kubetx.proto.conformance.v1.OpenAccountRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getOpenAccountMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reads an account back from the participant's own store.
     * </pre>
     */
    public io.kubetx.proto.conformance.v1.ReadAccountResponse readAccount(io.kubetx.proto.conformance.v1.ReadAccountRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getReadAccountMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * For a MessageSource: runs the business operation of a reliable message in
     * one local transaction: balance -= amount and the prepared message for
     * `transaction_uid` recorded together (the SDK's upstream helper), then
     * commits it (`commit` true) or rolls it back. Answers FAILED_PRECONDITION
     * when the message can no longer be prepared because CheckPrepared already
     * answered ROLLED_BACK for that uid; the account is then unchanged.
     * </pre>
     */
    public io.kubetx.proto.conformance.v1.PrepareMessageResponse prepareMessage(io.kubetx.proto.conformance.v1.PrepareMessageRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPrepareMessageMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service ConformanceHook.
   */
  public static final class ConformanceHookBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ConformanceHookBlockingStub> {
    private ConformanceHookBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConformanceHookBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConformanceHookBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates the account, or resets an existing one, with this balance and nothing held.
     * </pre>
     */
    public io.kubetx.proto.conformance.v1.OpenAccountResponse openAccount(io.kubetx.proto.conformance.v1.OpenAccountRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getOpenAccountMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reads an account back from the participant's own store.
     * </pre>
     */
    public io.kubetx.proto.conformance.v1.ReadAccountResponse readAccount(io.kubetx.proto.conformance.v1.ReadAccountRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getReadAccountMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * For a MessageSource: runs the business operation of a reliable message in
     * one local transaction: balance -= amount and the prepared message for
     * `transaction_uid` recorded together (the SDK's upstream helper), then
     * commits it (`commit` true) or rolls it back. Answers FAILED_PRECONDITION
     * when the message can no longer be prepared because CheckPrepared already
     * answered ROLLED_BACK for that uid; the account is then unchanged.
     * </pre>
     */
    public io.kubetx.proto.conformance.v1.PrepareMessageResponse prepareMessage(io.kubetx.proto.conformance.v1.PrepareMessageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPrepareMessageMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service ConformanceHook.
   */
  public static final class ConformanceHookFutureStub
      extends io.grpc.stub.AbstractFutureStub<ConformanceHookFutureStub> {
    private ConformanceHookFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConformanceHookFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConformanceHookFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates the account, or resets an existing one, with this balance and nothing held.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.conformance.v1.OpenAccountResponse> openAccount(
        io.kubetx.proto.conformance.v1.OpenAccountRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getOpenAccountMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Reads an account back from the participant's own store.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.conformance.v1.ReadAccountResponse> readAccount(
        io.kubetx.proto.conformance.v1.ReadAccountRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getReadAccountMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * For a MessageSource: runs the business operation of a reliable message in
     * one local transaction: balance -= amount and the prepared message for
     * `transaction_uid` recorded together (the SDK's upstream helper), then
     * commits it (`commit` true) or rolls it back. Answers FAILED_PRECONDITION
     * when the message can no longer be prepared because CheckPrepared already
     * answered ROLLED_BACK for that uid; the account is then unchanged.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.conformance.v1.PrepareMessageResponse> prepareMessage(
        io.kubetx.proto.conformance.v1.PrepareMessageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPrepareMessageMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_OPEN_ACCOUNT = 0;
  private static final int METHODID_READ_ACCOUNT = 1;
  private static final int METHODID_PREPARE_MESSAGE = 2;

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
        case METHODID_OPEN_ACCOUNT:
          serviceImpl.openAccount((io.kubetx.proto.conformance.v1.OpenAccountRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.OpenAccountResponse>) responseObserver);
          break;
        case METHODID_READ_ACCOUNT:
          serviceImpl.readAccount((io.kubetx.proto.conformance.v1.ReadAccountRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.ReadAccountResponse>) responseObserver);
          break;
        case METHODID_PREPARE_MESSAGE:
          serviceImpl.prepareMessage((io.kubetx.proto.conformance.v1.PrepareMessageRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.conformance.v1.PrepareMessageResponse>) responseObserver);
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
          getOpenAccountMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.conformance.v1.OpenAccountRequest,
              io.kubetx.proto.conformance.v1.OpenAccountResponse>(
                service, METHODID_OPEN_ACCOUNT)))
        .addMethod(
          getReadAccountMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.conformance.v1.ReadAccountRequest,
              io.kubetx.proto.conformance.v1.ReadAccountResponse>(
                service, METHODID_READ_ACCOUNT)))
        .addMethod(
          getPrepareMessageMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.conformance.v1.PrepareMessageRequest,
              io.kubetx.proto.conformance.v1.PrepareMessageResponse>(
                service, METHODID_PREPARE_MESSAGE)))
        .build();
  }

  private static abstract class ConformanceHookBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ConformanceHookBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.kubetx.proto.conformance.v1.HookProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ConformanceHook");
    }
  }

  private static final class ConformanceHookFileDescriptorSupplier
      extends ConformanceHookBaseDescriptorSupplier {
    ConformanceHookFileDescriptorSupplier() {}
  }

  private static final class ConformanceHookMethodDescriptorSupplier
      extends ConformanceHookBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ConformanceHookMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (ConformanceHookGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ConformanceHookFileDescriptorSupplier())
              .addMethod(getOpenAccountMethod())
              .addMethod(getReadAccountMethod())
              .addMethod(getPrepareMessageMethod())
              .build();
        }
      }
    }
    return result;
  }
}

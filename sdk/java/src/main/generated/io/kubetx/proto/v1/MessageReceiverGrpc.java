package io.kubetx.proto.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Receiver of reliable messages and best-effort notifications.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class MessageReceiverGrpc {

  private MessageReceiverGrpc() {}

  public static final java.lang.String SERVICE_NAME = "kubetx.v1.MessageReceiver";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getDeliverMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Deliver",
      requestType = io.kubetx.proto.v1.BranchRequest.class,
      responseType = io.kubetx.proto.v1.BranchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest,
      io.kubetx.proto.v1.BranchResponse> getDeliverMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse> getDeliverMethod;
    if ((getDeliverMethod = MessageReceiverGrpc.getDeliverMethod) == null) {
      synchronized (MessageReceiverGrpc.class) {
        if ((getDeliverMethod = MessageReceiverGrpc.getDeliverMethod) == null) {
          MessageReceiverGrpc.getDeliverMethod = getDeliverMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.BranchRequest, io.kubetx.proto.v1.BranchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Deliver"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.BranchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MessageReceiverMethodDescriptorSupplier("Deliver"))
              .build();
        }
      }
    }
    return getDeliverMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static MessageReceiverStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageReceiverStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageReceiverStub>() {
        @java.lang.Override
        public MessageReceiverStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageReceiverStub(channel, callOptions);
        }
      };
    return MessageReceiverStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static MessageReceiverBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageReceiverBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageReceiverBlockingV2Stub>() {
        @java.lang.Override
        public MessageReceiverBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageReceiverBlockingV2Stub(channel, callOptions);
        }
      };
    return MessageReceiverBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static MessageReceiverBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageReceiverBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageReceiverBlockingStub>() {
        @java.lang.Override
        public MessageReceiverBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageReceiverBlockingStub(channel, callOptions);
        }
      };
    return MessageReceiverBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static MessageReceiverFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageReceiverFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageReceiverFutureStub>() {
        @java.lang.Override
        public MessageReceiverFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageReceiverFutureStub(channel, callOptions);
        }
      };
    return MessageReceiverFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Receiver of reliable messages and best-effort notifications.
   * </pre>
   */
  public interface AsyncService {

    /**
     */
    default void deliver(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeliverMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service MessageReceiver.
   * <pre>
   * Receiver of reliable messages and best-effort notifications.
   * </pre>
   */
  public static abstract class MessageReceiverImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return MessageReceiverGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service MessageReceiver.
   * <pre>
   * Receiver of reliable messages and best-effort notifications.
   * </pre>
   */
  public static final class MessageReceiverStub
      extends io.grpc.stub.AbstractAsyncStub<MessageReceiverStub> {
    private MessageReceiverStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageReceiverStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageReceiverStub(channel, callOptions);
    }

    /**
     */
    public void deliver(io.kubetx.proto.v1.BranchRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.BranchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeliverMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service MessageReceiver.
   * <pre>
   * Receiver of reliable messages and best-effort notifications.
   * </pre>
   */
  public static final class MessageReceiverBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<MessageReceiverBlockingV2Stub> {
    private MessageReceiverBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageReceiverBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageReceiverBlockingV2Stub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse deliver(io.kubetx.proto.v1.BranchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeliverMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service MessageReceiver.
   * <pre>
   * Receiver of reliable messages and best-effort notifications.
   * </pre>
   */
  public static final class MessageReceiverBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<MessageReceiverBlockingStub> {
    private MessageReceiverBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageReceiverBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageReceiverBlockingStub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.BranchResponse deliver(io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeliverMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service MessageReceiver.
   * <pre>
   * Receiver of reliable messages and best-effort notifications.
   * </pre>
   */
  public static final class MessageReceiverFutureStub
      extends io.grpc.stub.AbstractFutureStub<MessageReceiverFutureStub> {
    private MessageReceiverFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageReceiverFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageReceiverFutureStub(channel, callOptions);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.BranchResponse> deliver(
        io.kubetx.proto.v1.BranchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeliverMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_DELIVER = 0;

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
        case METHODID_DELIVER:
          serviceImpl.deliver((io.kubetx.proto.v1.BranchRequest) request,
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
          getDeliverMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.BranchRequest,
              io.kubetx.proto.v1.BranchResponse>(
                service, METHODID_DELIVER)))
        .build();
  }

  private static abstract class MessageReceiverBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    MessageReceiverBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.kubetx.proto.v1.ParticipantProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("MessageReceiver");
    }
  }

  private static final class MessageReceiverFileDescriptorSupplier
      extends MessageReceiverBaseDescriptorSupplier {
    MessageReceiverFileDescriptorSupplier() {}
  }

  private static final class MessageReceiverMethodDescriptorSupplier
      extends MessageReceiverBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    MessageReceiverMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (MessageReceiverGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new MessageReceiverFileDescriptorSupplier())
              .addMethod(getDeliverMethod())
              .build();
        }
      }
    }
    return result;
  }
}

package io.kubetx.proto.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * The upstream of a reliable message, asked whether its local transaction
 * committed when no decision arrived in time (check-back).
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class MessageSourceGrpc {

  private MessageSourceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "kubetx.v1.MessageSource";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.kubetx.proto.v1.CheckPreparedRequest,
      io.kubetx.proto.v1.CheckPreparedResponse> getCheckPreparedMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CheckPrepared",
      requestType = io.kubetx.proto.v1.CheckPreparedRequest.class,
      responseType = io.kubetx.proto.v1.CheckPreparedResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.kubetx.proto.v1.CheckPreparedRequest,
      io.kubetx.proto.v1.CheckPreparedResponse> getCheckPreparedMethod() {
    io.grpc.MethodDescriptor<io.kubetx.proto.v1.CheckPreparedRequest, io.kubetx.proto.v1.CheckPreparedResponse> getCheckPreparedMethod;
    if ((getCheckPreparedMethod = MessageSourceGrpc.getCheckPreparedMethod) == null) {
      synchronized (MessageSourceGrpc.class) {
        if ((getCheckPreparedMethod = MessageSourceGrpc.getCheckPreparedMethod) == null) {
          MessageSourceGrpc.getCheckPreparedMethod = getCheckPreparedMethod =
              io.grpc.MethodDescriptor.<io.kubetx.proto.v1.CheckPreparedRequest, io.kubetx.proto.v1.CheckPreparedResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CheckPrepared"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.CheckPreparedRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.kubetx.proto.v1.CheckPreparedResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MessageSourceMethodDescriptorSupplier("CheckPrepared"))
              .build();
        }
      }
    }
    return getCheckPreparedMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static MessageSourceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageSourceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageSourceStub>() {
        @java.lang.Override
        public MessageSourceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageSourceStub(channel, callOptions);
        }
      };
    return MessageSourceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static MessageSourceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageSourceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageSourceBlockingV2Stub>() {
        @java.lang.Override
        public MessageSourceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageSourceBlockingV2Stub(channel, callOptions);
        }
      };
    return MessageSourceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static MessageSourceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageSourceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageSourceBlockingStub>() {
        @java.lang.Override
        public MessageSourceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageSourceBlockingStub(channel, callOptions);
        }
      };
    return MessageSourceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static MessageSourceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MessageSourceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MessageSourceFutureStub>() {
        @java.lang.Override
        public MessageSourceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MessageSourceFutureStub(channel, callOptions);
        }
      };
    return MessageSourceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * The upstream of a reliable message, asked whether its local transaction
   * committed when no decision arrived in time (check-back).
   * </pre>
   */
  public interface AsyncService {

    /**
     */
    default void checkPrepared(io.kubetx.proto.v1.CheckPreparedRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.CheckPreparedResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCheckPreparedMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service MessageSource.
   * <pre>
   * The upstream of a reliable message, asked whether its local transaction
   * committed when no decision arrived in time (check-back).
   * </pre>
   */
  public static abstract class MessageSourceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return MessageSourceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service MessageSource.
   * <pre>
   * The upstream of a reliable message, asked whether its local transaction
   * committed when no decision arrived in time (check-back).
   * </pre>
   */
  public static final class MessageSourceStub
      extends io.grpc.stub.AbstractAsyncStub<MessageSourceStub> {
    private MessageSourceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageSourceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageSourceStub(channel, callOptions);
    }

    /**
     */
    public void checkPrepared(io.kubetx.proto.v1.CheckPreparedRequest request,
        io.grpc.stub.StreamObserver<io.kubetx.proto.v1.CheckPreparedResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCheckPreparedMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service MessageSource.
   * <pre>
   * The upstream of a reliable message, asked whether its local transaction
   * committed when no decision arrived in time (check-back).
   * </pre>
   */
  public static final class MessageSourceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<MessageSourceBlockingV2Stub> {
    private MessageSourceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageSourceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageSourceBlockingV2Stub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.CheckPreparedResponse checkPrepared(io.kubetx.proto.v1.CheckPreparedRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCheckPreparedMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service MessageSource.
   * <pre>
   * The upstream of a reliable message, asked whether its local transaction
   * committed when no decision arrived in time (check-back).
   * </pre>
   */
  public static final class MessageSourceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<MessageSourceBlockingStub> {
    private MessageSourceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageSourceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageSourceBlockingStub(channel, callOptions);
    }

    /**
     */
    public io.kubetx.proto.v1.CheckPreparedResponse checkPrepared(io.kubetx.proto.v1.CheckPreparedRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCheckPreparedMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service MessageSource.
   * <pre>
   * The upstream of a reliable message, asked whether its local transaction
   * committed when no decision arrived in time (check-back).
   * </pre>
   */
  public static final class MessageSourceFutureStub
      extends io.grpc.stub.AbstractFutureStub<MessageSourceFutureStub> {
    private MessageSourceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MessageSourceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MessageSourceFutureStub(channel, callOptions);
    }

    /**
     */
    public com.google.common.util.concurrent.ListenableFuture<io.kubetx.proto.v1.CheckPreparedResponse> checkPrepared(
        io.kubetx.proto.v1.CheckPreparedRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCheckPreparedMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_CHECK_PREPARED = 0;

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
        case METHODID_CHECK_PREPARED:
          serviceImpl.checkPrepared((io.kubetx.proto.v1.CheckPreparedRequest) request,
              (io.grpc.stub.StreamObserver<io.kubetx.proto.v1.CheckPreparedResponse>) responseObserver);
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
          getCheckPreparedMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.kubetx.proto.v1.CheckPreparedRequest,
              io.kubetx.proto.v1.CheckPreparedResponse>(
                service, METHODID_CHECK_PREPARED)))
        .build();
  }

  private static abstract class MessageSourceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    MessageSourceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.kubetx.proto.v1.ParticipantProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("MessageSource");
    }
  }

  private static final class MessageSourceFileDescriptorSupplier
      extends MessageSourceBaseDescriptorSupplier {
    MessageSourceFileDescriptorSupplier() {}
  }

  private static final class MessageSourceMethodDescriptorSupplier
      extends MessageSourceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    MessageSourceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (MessageSourceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new MessageSourceFileDescriptorSupplier())
              .addMethod(getCheckPreparedMethod())
              .build();
        }
      }
    }
    return result;
  }
}

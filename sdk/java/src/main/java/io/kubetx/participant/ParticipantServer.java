package io.kubetx.participant;

import io.grpc.BindableService;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServerBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A gRPC server for the participant services whose handlers are set (TCC, Saga, receiver, message
 * source; at least one), plus {@code grpc.health.v1.Health} (SERVING for {@code ""} and every
 * service) and any extra services (e.g. a {@code ConformanceHook}).
 *
 * <pre>{@code
 * ParticipantServer server = ParticipantServer.builder()
 *     .port(50051)
 *     .tcc(barrier.tcc(new Stock()))
 *     .build()
 *     .start();
 * server.registerShutdownHook();   // SIGTERM: drain, then exit
 * server.awaitTermination();
 * }</pre>
 *
 * <p>{@link #shutdown()} reports NOT_SERVING, stops taking calls, waits for the calls in flight up
 * to the grace ({@link Builder#shutdownGrace}, default 10 s) and then cancels the rest. Set the
 * pod's {@code terminationGracePeriodSeconds} above the grace.
 */
public final class ParticipantServer implements AutoCloseable {
  /** The port when none is set. */
  public static final int DEFAULT_PORT = 50051;
  /** How long {@link #shutdown()} waits for calls in flight when no grace is set. */
  public static final Duration DEFAULT_SHUTDOWN_GRACE = Duration.ofSeconds(10);

  private final Server server;
  private final HealthStatusManager health;
  private final List<String> services;
  private final Duration grace;
  private final System.Logger log;
  private final Object lock = new Object();
  private boolean started;
  private boolean stopped;

  private ParticipantServer(Server server, HealthStatusManager health, List<String> services, Duration grace, System.Logger log) {
    this.server = server;
    this.health = health;
    this.services = services;
    this.grace = grace;
    this.log = log;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Binds the port and starts serving; returns this. */
  public ParticipantServer start() {
    synchronized (lock) {
      if (started) {
        throw new IllegalStateException("already started");
      }
      try {
        server.start();
      } catch (IOException e) {
        throw new UncheckedIOException("participant: listen: " + e.getMessage(), e);
      }
      started = true;
    }
    for (String s : services) {
      health.setStatus(s, ServingStatus.SERVING);
    }
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    log.log(Level.INFO, "participant listening port=" + port() + " services=" + services);
    return this;
  }

  /** The bound port (useful with port 0); only after {@link #start()}. */
  public int port() {
    return server.getPort();
  }

  /** The names of the gRPC services served (without the health service). */
  public List<String> services() {
    return services;
  }

  /**
   * Graceful stop: NOT_SERVING for every service, no new calls, the calls in flight get the grace
   * to finish and are cancelled after it. Returns once the server has stopped. Safe to call more
   * than once and from a shutdown hook.
   */
  public void shutdown() {
    synchronized (lock) {
      if (!started || stopped) {
        return;
      }
      stopped = true;
    }
    log.log(Level.INFO, "participant draining grace=" + grace);
    health.enterTerminalState(); // NOT_SERVING: probes and load balancers stop sending calls
    server.shutdown();
    try {
      if (!server.awaitTermination(grace.toMillis(), TimeUnit.MILLISECONDS)) {
        log.log(Level.WARNING, "grace period over: cancelling in-flight calls");
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
    log.log(Level.INFO, "participant stopped");
  }

  /** {@link #shutdown()}. */
  @Override
  public void close() {
    shutdown();
  }

  /** Blocks until the server has stopped. */
  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  /** Calls {@link #shutdown()} when the JVM is asked to exit (SIGTERM, SIGINT); returns this. */
  public ParticipantServer registerShutdownHook() {
    Runtime.getRuntime().addShutdownHook(new Thread(this::shutdown, "kubetx-participant-shutdown"));
    return this;
  }

  /** Configures a {@link ParticipantServer}. */
  public static final class Builder {
    private String host;
    private int port = DEFAULT_PORT;
    private TccHandler tcc;
    private SagaHandler saga;
    private ReceiverHandler receiver;
    private MessageSource source;
    private final List<ServerServiceDefinition> extra = new ArrayList<>();
    private Duration grace = DEFAULT_SHUTDOWN_GRACE;
    private ServerCredentials credentials = InsecureServerCredentials.create();
    private Consumer<ServerBuilder<?>> customizer = b -> {};
    private System.Logger log = System.getLogger("io.kubetx.participant");

    private Builder() {}

    /** The port to listen on; 0 picks a free one (see {@link #port()}). @default 50051 */
    public Builder port(int port) {
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("port out of range: " + port);
      }
      this.port = port;
      return this;
    }

    /** The address to bind, e.g. {@code 127.0.0.1}. @default every interface */
    public Builder host(String host) {
      this.host = host;
      return this;
    }

    /** {@code host:port}, {@code :port} or {@code [::1]:port}. */
    public Builder address(String hostPort) {
      int i = hostPort.lastIndexOf(':');
      if (i < 0) {
        throw new IllegalArgumentException("address wants host:port, got " + hostPort);
      }
      String h = hostPort.substring(0, i);
      if (h.startsWith("[") && h.endsWith("]")) {
        h = h.substring(1, h.length() - 1);
      }
      host(h.isEmpty() || h.equals("0.0.0.0") ? null : h);
      return port(Integer.parseInt(hostPort.substring(i + 1)));
    }

    /** Serves {@code kubetx.v1.TccParticipant}. */
    public Builder tcc(TccHandler h) {
      this.tcc = Objects.requireNonNull(h);
      return this;
    }

    /** Serves {@code kubetx.v1.SagaParticipant}. */
    public Builder saga(SagaHandler h) {
      this.saga = Objects.requireNonNull(h);
      return this;
    }

    /** Serves {@code kubetx.v1.MessageReceiver}. */
    public Builder receiver(ReceiverHandler h) {
      this.receiver = Objects.requireNonNull(h);
      return this;
    }

    /** Serves {@code kubetx.v1.MessageSource} (e.g. an {@code Outbox}). */
    public Builder source(MessageSource h) {
      this.source = Objects.requireNonNull(h);
      return this;
    }

    /** Serves an extra service beside the participant's (e.g. a ConformanceHook). */
    public Builder addService(BindableService s) {
      extra.add(s.bindService());
      return this;
    }

    /** Serves an extra service definition (e.g. one with interceptors). */
    public Builder addService(ServerServiceDefinition s) {
      extra.add(Objects.requireNonNull(s));
      return this;
    }

    /** How long {@link #shutdown()} waits for calls in flight. @default 10 s */
    public Builder shutdownGrace(Duration grace) {
      if (grace.isNegative()) {
        throw new IllegalArgumentException("negative shutdown grace " + grace);
      }
      this.grace = grace;
      return this;
    }

    /** TLS or mTLS credentials (e.g. {@code TlsServerCredentials}). @default plaintext */
    public Builder credentials(ServerCredentials c) {
      this.credentials = Objects.requireNonNull(c);
      return this;
    }

    /** Anything else on the gRPC server builder: interceptors, executors, limits. */
    public Builder customize(Consumer<ServerBuilder<?>> c) {
      this.customizer = Objects.requireNonNull(c);
      return this;
    }

    /** Where the one line per call goes. @default System.getLogger("io.kubetx.participant") */
    public Builder logger(System.Logger log) {
      this.log = Objects.requireNonNull(log);
      return this;
    }

    /** The server, not yet started. */
    public ParticipantServer build() {
      if (tcc == null && saga == null && receiver == null && source == null) {
        throw new IllegalStateException("participant: give at least one of tcc, saga, receiver, source");
      }
      InetSocketAddress addr = host == null ? new InetSocketAddress(port) : new InetSocketAddress(host, port);
      NettyServerBuilder b = NettyServerBuilder.forAddress(addr, credentials);
      List<String> names = new ArrayList<>();
      List<ServerServiceDefinition> defs = new ArrayList<>();
      if (tcc != null) {
        defs.add(new Services.Tcc(tcc, log).bindService());
      }
      if (saga != null) {
        defs.add(new Services.Saga(saga, log).bindService());
      }
      if (receiver != null) {
        defs.add(new Services.Receiver(receiver, log).bindService());
      }
      if (source != null) {
        defs.add(new Services.Source(source, log).bindService());
      }
      defs.addAll(extra);
      for (ServerServiceDefinition d : defs) {
        b.addService(d);
        names.add(d.getServiceDescriptor().getName());
      }
      HealthStatusManager health = new HealthStatusManager();
      b.addService(health.getHealthService());
      customizer.accept(b);
      return new ParticipantServer(b.build(), health, List.copyOf(names), grace, log);
    }
  }
}

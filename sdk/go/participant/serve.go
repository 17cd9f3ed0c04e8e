package participant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"
)

// DefaultAddress is where Serve listens when Options.Address is empty.
const DefaultAddress = "0.0.0.0:50051"

// DefaultShutdownGrace is how long Serve waits for in-flight calls when
// Options.ShutdownGrace is zero.
const DefaultShutdownGrace = 10 * time.Second

// Options configures Serve and Register. At least one of TCC, Saga, Receiver
// and Source must be set; each one set registers its gRPC service.
type Options struct {
	// Address is host:port to listen on; "127.0.0.1:0" picks a free port.
	// Default DefaultAddress.
	Address string
	// TCC serves kubetx.v1.TccParticipant.
	TCC TCC
	// Saga serves kubetx.v1.SagaParticipant.
	Saga Saga
	// Receiver serves kubetx.v1.MessageReceiver.
	Receiver Receiver
	// Source serves kubetx.v1.MessageSource (e.g. a *message.Outbox).
	Source Source
	// ServerOptions are passed to grpc.NewServer (credentials, interceptors, limits).
	ServerOptions []grpc.ServerOption
	// Register, if set, registers extra services on the server (e.g. a ConformanceHook).
	Register func(*grpc.Server)
	// Logger receives one line per call (identity, attempt, outcome; never
	// the payload). Default slog.Default().
	Logger *slog.Logger
	// ShutdownGrace bounds the graceful stop once ctx is done; calls still
	// running then are cancelled. Default DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Listener, if set, is served instead of listening on Address (tests,
	// socket activation). Serve closes it when it returns.
	Listener net.Listener
	// OnListening, if set, is called with the bound address once Serve
	// listens (useful with port 0).
	OnListening func(net.Addr)
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o *Options) validate() error {
	if o.TCC == nil && o.Saga == nil && o.Receiver == nil && o.Source == nil {
		return errors.New("participant: give at least one of Options.TCC, Saga, Receiver, Source")
	}
	return nil
}

// Register registers the participant services that opts names (and calls
// opts.Register) on a server the caller owns. It does not add the health
// service; Serve does. It panics if no handler is set, like
// grpc.Server.RegisterService on a programming error.
func Register(s *grpc.Server, opts Options) {
	if err := opts.validate(); err != nil {
		panic(err)
	}
	log := opts.logger()
	if opts.TCC != nil {
		kubetxv1.RegisterTccParticipantServer(s, &tccServer{h: opts.TCC, log: log})
	}
	if opts.Saga != nil {
		kubetxv1.RegisterSagaParticipantServer(s, &sagaServer{h: opts.Saga, log: log})
	}
	if opts.Receiver != nil {
		kubetxv1.RegisterMessageReceiverServer(s, &receiverServer{h: opts.Receiver, log: log})
	}
	if opts.Source != nil {
		kubetxv1.RegisterMessageSourceServer(s, &sourceServer{h: opts.Source, log: log})
	}
	if opts.Register != nil {
		opts.Register(s)
	}
}

// Serve listens on opts.Address (or serves opts.Listener), serves the
// participant services plus grpc.health.v1.Health (SERVING for "" and every
// registered service), and blocks until ctx is done or the server fails.
// When ctx is done it reports NOT_SERVING, stops taking new calls, waits up to
// ShutdownGrace for the calls in flight and then cancels the rest; it returns
// nil after such a shutdown.
func Serve(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	log := opts.logger()
	lis := opts.Listener
	if lis == nil {
		addr := opts.Address
		if addr == "" {
			addr = DefaultAddress
		}
		var err error
		if lis, err = (&net.ListenConfig{}).Listen(ctx, "tcp", addr); err != nil {
			return fmt.Errorf("participant: listen on %s: %w", addr, err)
		}
	}

	s := grpc.NewServer(opts.ServerOptions...)
	Register(s, opts)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	for name := range s.GetServiceInfo() {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	log.Info("participant listening", "address", lis.Addr().String())
	if opts.OnListening != nil {
		opts.OnListening(lis.Addr())
	}

	select {
	case err := <-served:
		hs.Shutdown()
		return fmt.Errorf("participant: serve: %w", err)
	case <-ctx.Done():
	}

	grace := opts.ShutdownGrace
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	log.Info("participant draining", "grace", grace.String())
	hs.Shutdown() // every service NOT_SERVING: probes and load balancers stop sending calls
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		log.Warn("grace period over: cancelling in-flight calls")
		s.Stop()
		<-stopped
	}
	<-served // Serve returns once the server stopped
	log.Info("participant stopped")
	return nil
}

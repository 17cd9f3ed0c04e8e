package participant_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"
	"github.com/kubetx/kubetx/sdk/go/internal/testdb"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// behaviour picks what the test handler does from Request.Operation.
func behave(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	switch r.Operation {
	case "ok":
		return &participant.Response{Message: "fine", Data: append([]byte("echo:"), r.Payload...)}, nil
	case "nil":
		return nil, nil
	case "refuse":
		return nil, participant.Refuse("insufficient stock for %s", "sku-1")
	case "refuse-wrapped":
		return nil, fmt.Errorf("try: %w", participant.Refuse("no"))
	case "precondition":
		return nil, &participant.Refused{Message: "bad order", Code: codes.FailedPrecondition}
	case "invalid":
		return nil, participant.Invalid("payload is not JSON")
	case "status":
		return nil, status.Error(codes.NotFound, "no such account")
	case "deadline":
		return nil, fmt.Errorf("query: %w", context.DeadlineExceeded)
	case "error":
		return nil, errors.New("database is down")
	case "too-large":
		return &participant.Response{Data: make([]byte, participant.MaxDataBytes+1)}, nil
	case "panic":
		panic("handler bug")
	case "slow":
		select {
		case <-time.After(300 * time.Millisecond):
			return &participant.Response{Message: "slow done"}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "block":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("unknown operation %q", r.Operation)
}

type source struct{}

func (source) CheckPrepared(ctx context.Context, r *kubetxv1.CheckPreparedRequest) (kubetxv1.CheckPreparedResponse_State, error) {
	switch r.GetOperation() {
	case "committed":
		return kubetxv1.CheckPreparedResponse_STATE_COMMITTED, nil
	case "bogus":
		return kubetxv1.CheckPreparedResponse_State(42), nil
	}
	return 0, errors.New("outbox unreachable")
}

// server runs Serve on a loopback port until the test ends (or stop is called).
type server struct {
	conn   *grpc.ClientConn
	stop   context.CancelFunc
	served chan error
}

func start(t *testing.T, opts participant.Options) *server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = lis
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stop: cancel, served: make(chan error, 1)}
	go func() { s.served <- participant.Serve(ctx, opts) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		select {
		case <-s.served:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return s
}

func tccFuncs() participant.TCC {
	return participant.TCCFuncs{TryFunc: behave, ConfirmFunc: behave, CancelFunc: behave}
}

func TestStatusCodes(t *testing.T) {
	s := start(t, participant.Options{TCC: tccFuncs(), Source: source{}})
	tcc := kubetxv1.NewTccParticipantClient(s.conn)
	ctx := context.Background()
	cases := []struct {
		op   string
		code codes.Code
		msg  string
	}{
		{"ok", codes.OK, ""},
		{"nil", codes.OK, ""},
		{"refuse", codes.Aborted, "insufficient stock for sku-1"},
		{"refuse-wrapped", codes.Aborted, "no"},
		{"precondition", codes.FailedPrecondition, "bad order"},
		{"invalid", codes.InvalidArgument, "payload is not JSON"},
		{"status", codes.NotFound, "no such account"},
		{"deadline", codes.DeadlineExceeded, "deadline exceeded"},
		{"error", codes.Unavailable, "database is down"},
		{"too-large", codes.Internal, "over the 4096-byte limit"},
		{"panic", codes.Internal, "panicked"},
		{"ok", codes.OK, ""}, // the server survived the panic
	}
	for _, c := range cases {
		for _, call := range []func(context.Context, *kubetxv1.BranchRequest, ...grpc.CallOption) (*kubetxv1.BranchResponse, error){tcc.Try, tcc.Cancel} {
			resp, err := call(ctx, &kubetxv1.BranchRequest{TransactionUid: "u", Branch: "b", Operation: c.op, Payload: []byte(`{"a":1}`)})
			st := status.Convert(err)
			if st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
				t.Errorf("%s: got %v %q, want %v containing %q", c.op, st.Code(), st.Message(), c.code, c.msg)
			}
			if c.op == "ok" && err == nil && (resp.GetMessage() != "fine" || string(resp.GetData()) != `echo:{"a":1}`) {
				t.Errorf("ok: response %q %q", resp.GetMessage(), resp.GetData())
			}
		}
	}

	// Services not given are UNIMPLEMENTED.
	_, err := kubetxv1.NewSagaParticipantClient(s.conn).Execute(ctx, &kubetxv1.BranchRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Saga on a TCC-only server: %v", err)
	}

	src := kubetxv1.NewMessageSourceClient(s.conn)
	if r, err := src.CheckPrepared(ctx, &kubetxv1.CheckPreparedRequest{Operation: "committed"}); err != nil || r.GetState() != kubetxv1.CheckPreparedResponse_STATE_COMMITTED {
		t.Errorf("CheckPrepared: %v %v", r, err)
	}
	for _, op := range []string{"down", "bogus"} {
		if _, err := src.CheckPrepared(ctx, &kubetxv1.CheckPreparedRequest{Operation: op}); status.Code(err) != codes.Unavailable {
			t.Errorf("CheckPrepared %s: %v", op, err)
		}
	}
}

func TestRequestFieldsPassThrough(t *testing.T) {
	var got *participant.Request
	s := start(t, participant.Options{Receiver: receiverFunc(func(ctx context.Context, r *participant.Request) (*participant.Response, error) {
		got = r
		return nil, nil
	})})
	in := &kubetxv1.BranchRequest{TransactionUid: "uid", Namespace: "ns", Name: "n", Branch: "br", Operation: "op",
		Payload: []byte("not json at all"), Attempt: 3, Result: []byte{0, 1}}
	if _, err := kubetxv1.NewMessageReceiverClient(s.conn).Deliver(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	want := participant.Request{TransactionUID: "uid", Namespace: "ns", Name: "n", Branch: "br", Operation: "op",
		Payload: []byte("not json at all"), Attempt: 3, Result: []byte{0, 1}}
	if got.TransactionUID != want.TransactionUID || got.Namespace != want.Namespace || got.Name != want.Name ||
		got.Branch != want.Branch || got.Operation != want.Operation || !bytes.Equal(got.Payload, want.Payload) ||
		got.Attempt != want.Attempt || !bytes.Equal(got.Result, want.Result) {
		t.Fatalf("got %+v", got)
	}
}

type receiverFunc func(ctx context.Context, r *participant.Request) (*participant.Response, error)

func (f receiverFunc) Deliver(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return f(ctx, r)
}

func TestHealthAndGracefulShutdown(t *testing.T) {
	s := start(t, participant.Options{TCC: tccFuncs(), ShutdownGrace: 5 * time.Second})
	ctx := context.Background()
	health := healthpb.NewHealthClient(s.conn)
	for _, svc := range []string{"", "kubetx.v1.TccParticipant"} {
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, r, err)
		}
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}

	// A call in flight when shutdown begins still completes.
	slow := make(chan error, 1)
	go func() {
		resp, err := kubetxv1.NewTccParticipantClient(s.conn).Try(ctx, &kubetxv1.BranchRequest{Operation: "slow"})
		if err == nil && resp.GetMessage() != "slow done" {
			err = fmt.Errorf("message %q", resp.GetMessage())
		}
		slow <- err
	}()
	time.Sleep(100 * time.Millisecond)
	s.stop()
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("while draining: %v %v", r, err)
	}
	stopWatch() // a Watch stream is a call in flight too
	if err := <-slow; err != nil {
		t.Fatalf("in-flight call: %v", err)
	}
	select {
	case err := <-s.served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		s.served <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after draining")
	}
}

func TestShutdownGraceBounded(t *testing.T) {
	s := start(t, participant.Options{TCC: tccFuncs(), ShutdownGrace: 200 * time.Millisecond})
	blocked := make(chan error, 1)
	go func() {
		_, err := kubetxv1.NewTccParticipantClient(s.conn).Try(context.Background(), &kubetxv1.BranchRequest{Operation: "block"})
		blocked <- err
	}()
	time.Sleep(100 * time.Millisecond)
	started := time.Now()
	s.stop()
	select {
	case err := <-s.served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		s.served <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the grace period")
	}
	if took := time.Since(started); took > 3*time.Second {
		t.Fatalf("shutdown took %v with a 200ms grace", took)
	}
	if err := <-blocked; err == nil {
		t.Fatal("the blocked call succeeded")
	}
}

func TestServeNeedsAHandler(t *testing.T) {
	if err := participant.Serve(context.Background(), participant.Options{Address: "127.0.0.1:0"}); err == nil {
		t.Fatal("Serve without handlers returned nil")
	}
	if err := participant.Serve(context.Background(), participant.Options{Address: "256.0.0.1:1", TCC: tccFuncs()}); err == nil {
		t.Fatal("Serve on a bad address returned nil")
	}
}

// End to end: the barrier behind Serve, over gRPC, on SQLite.
func TestServeWithBarrier(t *testing.T) {
	servers := testdb.New()
	defer servers.Close()
	db := servers.SQLite(t)
	b, err := barrier.New(context.Background(), db, barrier.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	h := txTCC{try: func(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
		runs++
		return &participant.Response{Message: "held", Data: []byte(fmt.Sprintf("hold-%d", runs))}, nil
	}}
	s := start(t, participant.Options{TCC: barrier.TCC(b, h)})
	tcc := kubetxv1.NewTccParticipantClient(s.conn)
	ctx := context.Background()
	in := &kubetxv1.BranchRequest{TransactionUid: "u1", Branch: "b"}
	for i := 0; i < 2; i++ {
		resp, err := tcc.Try(ctx, in)
		if err != nil || string(resp.GetData()) != "hold-1" {
			t.Fatalf("Try #%d: %v %v", i, resp, err)
		}
	}
	if _, err := tcc.Confirm(ctx, &kubetxv1.BranchRequest{TransactionUid: "u2", Branch: "b"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Confirm without Try: %v", err)
	}
	if _, err := tcc.Cancel(ctx, &kubetxv1.BranchRequest{TransactionUid: "u3", Branch: "b"}); err != nil {
		t.Fatalf("null Cancel: %v", err)
	}
	if _, err := tcc.Try(ctx, &kubetxv1.BranchRequest{TransactionUid: "u3", Branch: "b"}); status.Code(err) != codes.Aborted {
		t.Fatalf("Try after Cancel: %v", err)
	}
	if _, err := tcc.Try(ctx, &kubetxv1.BranchRequest{Branch: "b"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Try without uid: %v", err)
	}
	if runs != 1 {
		t.Fatalf("Try handler ran %d times", runs)
	}
}

type txTCC struct {
	try func(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
}

func (h txTCC) Try(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return h.try(ctx, tx, r)
}

func (h txTCC) Confirm(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return nil, nil
}

func (h txTCC) Cancel(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return nil, nil
}

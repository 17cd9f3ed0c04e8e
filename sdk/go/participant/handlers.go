package participant

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"
)

// call runs one branch handler: recovers a panic, enforces MaxDataBytes, maps
// the error to a status and logs one line (never the payload).
func call(ctx context.Context, log *slog.Logger, method string, req *kubetxv1.BranchRequest,
	h func(context.Context, *Request) (*Response, error)) (*kubetxv1.BranchResponse, error) {
	started := time.Now()
	r := RequestFromProto(req)
	log = log.With("uid", r.TransactionUID, "namespace", r.Namespace, "name", r.Name,
		"branch", r.Branch, "method", method, "attempt", r.Attempt, "operation", r.Operation)
	resp, err := safely(log, method, func() (*Response, error) { return h(ctx, r) })
	if err == nil {
		err = CheckData(resp)
	}
	elapsed := time.Since(started).Milliseconds()
	if err != nil {
		st := Status(err)
		switch st.Code() {
		case codes.Aborted, codes.FailedPrecondition:
			log.Info(method+" refused", "code", st.Code().String(), "reason", st.Message(), "durationMs", elapsed)
		default:
			log.Warn(method+" failed", "code", st.Code().String(), "err", err.Error(), "durationMs", elapsed)
		}
		return nil, st.Err()
	}
	log.Info(method+" ok", "durationMs", elapsed)
	if resp == nil {
		return &kubetxv1.BranchResponse{}, nil
	}
	return &kubetxv1.BranchResponse{Message: resp.Message, Data: resp.Data}, nil
}

// safely runs fn, turning a panic into an INTERNAL status error (logged with
// its stack) so one bad call never takes the server down.
func safely[T any](log *slog.Logger, method string, fn func() (T, error)) (out T, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error(method+" panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "%s: handler panicked", method)
		}
	}()
	return fn()
}

type tccServer struct {
	kubetxv1.UnimplementedTccParticipantServer
	h   TCC
	log *slog.Logger
}

func (s *tccServer) Try(ctx context.Context, r *kubetxv1.BranchRequest) (*kubetxv1.BranchResponse, error) {
	return call(ctx, s.log, "Try", r, s.h.Try)
}

func (s *tccServer) Confirm(ctx context.Context, r *kubetxv1.BranchRequest) (*kubetxv1.BranchResponse, error) {
	return call(ctx, s.log, "Confirm", r, s.h.Confirm)
}

func (s *tccServer) Cancel(ctx context.Context, r *kubetxv1.BranchRequest) (*kubetxv1.BranchResponse, error) {
	return call(ctx, s.log, "Cancel", r, s.h.Cancel)
}

type sagaServer struct {
	kubetxv1.UnimplementedSagaParticipantServer
	h   Saga
	log *slog.Logger
}

func (s *sagaServer) Execute(ctx context.Context, r *kubetxv1.BranchRequest) (*kubetxv1.BranchResponse, error) {
	return call(ctx, s.log, "Execute", r, s.h.Execute)
}

func (s *sagaServer) Compensate(ctx context.Context, r *kubetxv1.BranchRequest) (*kubetxv1.BranchResponse, error) {
	return call(ctx, s.log, "Compensate", r, s.h.Compensate)
}

type receiverServer struct {
	kubetxv1.UnimplementedMessageReceiverServer
	h   Receiver
	log *slog.Logger
}

func (s *receiverServer) Deliver(ctx context.Context, r *kubetxv1.BranchRequest) (*kubetxv1.BranchResponse, error) {
	return call(ctx, s.log, "Deliver", r, s.h.Deliver)
}

type sourceServer struct {
	kubetxv1.UnimplementedMessageSourceServer
	h   Source
	log *slog.Logger
}

func (s *sourceServer) CheckPrepared(ctx context.Context, r *kubetxv1.CheckPreparedRequest) (*kubetxv1.CheckPreparedResponse, error) {
	log := s.log.With("uid", r.GetTransactionUid(), "namespace", r.GetNamespace(), "name", r.GetName(),
		"method", "CheckPrepared", "operation", r.GetOperation())
	state, err := safely(log, "CheckPrepared", func() (kubetxv1.CheckPreparedResponse_State, error) {
		return s.h.CheckPrepared(ctx, r)
	})
	if err == nil {
		if _, known := kubetxv1.CheckPreparedResponse_State_name[int32(state)]; !known {
			err = fmt.Errorf("CheckPrepared returned state %d; want COMMITTED, ROLLED_BACK or UNKNOWN", state)
		}
	}
	if err != nil {
		st := Status(err)
		log.Warn("CheckPrepared failed", "code", st.Code().String(), "err", err.Error())
		return nil, st.Err()
	}
	log.Info("CheckPrepared ok", "state", state.String())
	return &kubetxv1.CheckPreparedResponse{State: state}, nil
}

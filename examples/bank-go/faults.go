package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/kubetx/kubetx/sdk/go/participant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// faults injects transient failures for tests: with probability rate/2 a call
// answers UNAVAILABLE before doing anything, and with probability rate/2 it
// answers UNAVAILABLE after its effect committed (the reply is "lost"). Both
// are retryable, so the operator calls again and the barrier must answer the
// repeat without applying it twice.
type faults struct {
	rate float64
	log  *slog.Logger
	mu   sync.Mutex
	rng  *rand.Rand
}

func newFaults(rate float64, seed uint64, log *slog.Logger) *faults {
	return &faults{rate: rate, log: log, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (f *faults) hit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < f.rate/2
}

// around runs call, failing before or after it as drawn.
func (f *faults) around(ctx context.Context, method string, r *participant.Request, call func() (*participant.Response, error)) (*participant.Response, error) {
	if f.hit() {
		f.log.InfoContext(ctx, "fault injected", "when", "before", "method", method, "uid", r.TransactionUID, "branch", r.Branch, "attempt", r.Attempt)
		return nil, status.Error(codes.Unavailable, "injected fault (before the call)")
	}
	resp, err := call()
	if err == nil && f.hit() {
		f.log.InfoContext(ctx, "fault injected", "when", "after", "method", method, "uid", r.TransactionUID, "branch", r.Branch, "attempt", r.Attempt)
		return nil, status.Error(codes.Unavailable, "injected fault (after the commit)")
	}
	return resp, err
}

type faultyTCC struct {
	f     *faults
	inner participant.TCC
}

func (t faultyTCC) Try(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return t.f.around(ctx, "Try", r, func() (*participant.Response, error) { return t.inner.Try(ctx, r) })
}

func (t faultyTCC) Confirm(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return t.f.around(ctx, "Confirm", r, func() (*participant.Response, error) { return t.inner.Confirm(ctx, r) })
}

func (t faultyTCC) Cancel(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return t.f.around(ctx, "Cancel", r, func() (*participant.Response, error) { return t.inner.Cancel(ctx, r) })
}

type faultySaga struct {
	f     *faults
	inner participant.Saga
}

func (s faultySaga) Execute(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return s.f.around(ctx, "Execute", r, func() (*participant.Response, error) { return s.inner.Execute(ctx, r) })
}

func (s faultySaga) Compensate(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return s.f.around(ctx, "Compensate", r, func() (*participant.Response, error) { return s.inner.Compensate(ctx, r) })
}

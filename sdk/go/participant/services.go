package participant

import (
	"context"

	kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"
)

// TCC handles the TccParticipant service (mode: TCC). A nil *Response is
// answered as an empty OK.
type TCC interface {
	// Try reserves; a refusal (Refuse) rolls the whole transaction back.
	Try(ctx context.Context, r *Request) (*Response, error)
	// Confirm makes the reservation final; it must eventually succeed.
	Confirm(ctx context.Context, r *Request) (*Response, error)
	// Cancel releases the reservation; it must eventually succeed.
	Cancel(ctx context.Context, r *Request) (*Response, error)
}

// Saga handles the SagaParticipant service (mode: Saga).
type Saga interface {
	// Execute does the step; a refusal makes the earlier steps compensate.
	Execute(ctx context.Context, r *Request) (*Response, error)
	// Compensate undoes Execute; it must eventually succeed.
	Compensate(ctx context.Context, r *Request) (*Response, error)
}

// Receiver handles the MessageReceiver service (mode: Message and Notify).
// Delivery is at least once: deduplicate (barrier.Receiver does).
type Receiver interface {
	Deliver(ctx context.Context, r *Request) (*Response, error)
}

// Source handles the MessageSource service: the check-back of a reliable
// message's upstream. message.Outbox implements it.
type Source interface {
	// CheckPrepared tells whether the local transaction behind the message
	// committed; STATE_UNKNOWN means "ask again later".
	CheckPrepared(ctx context.Context, r *kubetxv1.CheckPreparedRequest) (kubetxv1.CheckPreparedResponse_State, error)
}

// TCCFuncs adapts three functions to TCC.
type TCCFuncs struct {
	TryFunc, ConfirmFunc, CancelFunc func(ctx context.Context, r *Request) (*Response, error)
}

// Try implements TCC.
func (f TCCFuncs) Try(ctx context.Context, r *Request) (*Response, error) { return f.TryFunc(ctx, r) }

// Confirm implements TCC.
func (f TCCFuncs) Confirm(ctx context.Context, r *Request) (*Response, error) {
	return f.ConfirmFunc(ctx, r)
}

// Cancel implements TCC.
func (f TCCFuncs) Cancel(ctx context.Context, r *Request) (*Response, error) {
	return f.CancelFunc(ctx, r)
}

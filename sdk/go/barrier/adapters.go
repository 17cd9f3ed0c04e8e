package barrier

import (
	"context"
	"database/sql"

	"github.com/kubetx/kubetx/sdk/go/participant"
)

// TxTCC is a TCC participant whose handlers run inside the barrier's
// transaction: write through tx, never Commit or Rollback it.
type TxTCC interface {
	Try(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
	Confirm(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
	Cancel(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
}

// TxSaga is a Saga participant whose handlers run inside the barrier's transaction.
type TxSaga interface {
	Execute(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
	Compensate(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
}

// TxReceiver is a message receiver whose handler runs inside the barrier's
// transaction (Deliver is deduplicated on uid and branch).
type TxReceiver interface {
	Deliver(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)
}

// TCC runs each method of h through b.Run, for participant.Options.TCC.
func TCC(b *Barrier, h TxTCC) participant.TCC { return tccAdapter{b, h} }

// Saga runs each method of h through b.Run, for participant.Options.Saga.
func Saga(b *Barrier, h TxSaga) participant.Saga { return sagaAdapter{b, h} }

// Receiver runs h.Deliver through b.Run, for participant.Options.Receiver.
func Receiver(b *Barrier, h TxReceiver) participant.Receiver { return receiverAdapter{b, h} }

func run(ctx context.Context, b *Barrier, m Method, r *participant.Request, h Handler) (*participant.Response, error) {
	resp, _, err := b.Run(ctx, m, r, h)
	return resp, err
}

type tccAdapter struct {
	b *Barrier
	h TxTCC
}

func (a tccAdapter) Try(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return run(ctx, a.b, Try, r, a.h.Try)
}

func (a tccAdapter) Confirm(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return run(ctx, a.b, Confirm, r, a.h.Confirm)
}

func (a tccAdapter) Cancel(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return run(ctx, a.b, Cancel, r, a.h.Cancel)
}

type sagaAdapter struct {
	b *Barrier
	h TxSaga
}

func (a sagaAdapter) Execute(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return run(ctx, a.b, Execute, r, a.h.Execute)
}

func (a sagaAdapter) Compensate(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return run(ctx, a.b, Compensate, r, a.h.Compensate)
}

type receiverAdapter struct {
	b *Barrier
	h TxReceiver
}

func (a receiverAdapter) Deliver(ctx context.Context, r *participant.Request) (*participant.Response, error) {
	return run(ctx, a.b, Deliver, r, a.h.Deliver)
}

package barrier_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

// stock is the TCC participant of docs/go.md.
type stock struct{}

func (stock) Try(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	var p struct {
		SKU string
		Qty int
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil || p.Qty <= 0 {
		return nil, participant.Invalid("bad payload: %v", err) // INVALID_ARGUMENT: rolls back at once
	}
	res, err := tx.ExecContext(ctx, `UPDATE items SET free = free - $1 WHERE sku = $2 AND free >= $1`, p.Qty, p.SKU)
	if err != nil {
		return nil, err // UNAVAILABLE: retried
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, participant.Refuse("insufficient stock for %s", p.SKU) // ABORTED: the transaction cancels
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO holds (uid, sku, qty) VALUES ($1, $2, $3)`, r.TransactionUID, p.SKU, p.Qty)
	return &participant.Response{Data: []byte(`{"hold":"` + r.TransactionUID + `"}`)}, err
}

func (stock) Confirm(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	_, err := tx.ExecContext(ctx, `DELETE FROM holds WHERE uid = $1`, r.TransactionUID)
	return nil, err
}

func (stock) Cancel(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	// Look the hold up by uid, not by r.Result: a Try whose answer was lost ran, but its data never arrived.
	_, err := tx.ExecContext(ctx, `WITH h AS (DELETE FROM holds WHERE uid = $1 RETURNING sku, qty)
		UPDATE items i SET free = free + h.qty FROM h WHERE i.sku = h.sku`, r.TransactionUID)
	return nil, err
}

// A TCC participant on PostgreSQL, served until SIGTERM (compiled, not run).
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	b, err := barrier.New(ctx, db, barrier.Postgres, barrier.WithLockTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(participant.Serve(ctx, participant.Options{Address: ":50051", TCC: barrier.TCC(b, stock{})}))
}

package broker_test

import (
	"context"
	"database/sql"
	"log"
	"os"
	"os/signal"
	"syscall"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/broker"
)

// The consumer of docs/go.md, "Consuming broker messages" (compiled, not run).
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, err := sql.Open("sqlite", "file:warehouse.db?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	b, err := barrier.New(ctx, db, barrier.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	sub, err := broker.Subscribe(ctx, broker.Options{
		NATS:    &broker.NATSOptions{URL: "nats://nats.messaging:4222", Stream: "KUBETX", Durable: "warehouse", Subject: "shop.orders.paid"},
		Redis:   &broker.RedisOptions{URL: "redis://redis.messaging:6379", Group: "warehouse", Consumer: os.Getenv("POD_NAME")},
		Barrier: b,
		// Inside the barrier's transaction: write through tx, never Commit or Rollback it.
		Handler: func(ctx context.Context, tx *sql.Tx, m *broker.Message) error {
			var p struct{ OrderID string }
			if err := m.Decode(&p); err != nil {
				return err // not JSON: participant.Invalid, the message is dropped
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (order_id, tx_uid) VALUES (?, ?)`, p.OrderID, m.UID)
			return err
		},
	})
	if err != nil {
		log.Fatal(err) // invalid options; unreachable servers are retried instead
	}
	<-sub.Done() // stops when ctx is done: nothing fetched any more, messages in flight finished
}

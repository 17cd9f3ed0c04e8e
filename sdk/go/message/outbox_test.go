package message_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"
	"github.com/kubetx/kubetx/sdk/go/internal/testdb"
	"github.com/kubetx/kubetx/sdk/go/message"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

var servers *testdb.Servers

func TestMain(m *testing.M) {
	servers = testdb.New()
	code := m.Run()
	servers.Close()
	os.Exit(code)
}

type dialect struct {
	name    string
	dialect barrier.Dialect
	open    func(testing.TB) *sql.DB
}

func forEachDialect(t *testing.T, f func(t *testing.T, d dialect, db *sql.DB)) {
	for _, d := range []dialect{
		{"postgres", barrier.Postgres, servers.Postgres},
		{"mariadb", barrier.MySQL, servers.MySQL},
		{"sqlite", barrier.SQLite, servers.SQLite},
	} {
		t.Run(d.name, func(t *testing.T) { f(t, d, d.open(t)) })
	}
}

func q(d barrier.Dialect, query string) string {
	if d != barrier.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func orders(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func check(o *message.Outbox, k message.Key) (kubetxv1.CheckPreparedResponse_State, error) {
	return o.CheckPrepared(context.Background(), &kubetxv1.CheckPreparedRequest{TransactionUid: k.UID, Namespace: k.Namespace, Name: k.Name})
}

var _ participant.Source = (*message.Outbox)(nil)

func TestRunLocalThenCheckPrepared(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		ctx := context.Background()
		o, err := message.NewOutbox(ctx, db, d.dialect)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		k := message.Key{UID: "uid-1", Namespace: "shop", Name: "order-1"}
		insertOrder := func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, q(d.dialect, `INSERT INTO orders (id) VALUES (?)`), k.Name)
			return err
		}
		if err := o.RunLocal(ctx, k, insertOrder); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if s, err := check(o, k); err != nil || s != kubetxv1.CheckPreparedResponse_STATE_COMMITTED {
				t.Fatalf("check-back #%d: %v %v", i, s, err)
			}
		}
		// A second local transaction for the same message is refused (not ErrRolledBack).
		if err := o.RunLocal(ctx, k, insertOrder); err == nil || errors.Is(err, message.ErrRolledBack) {
			t.Fatalf("second RunLocal: %v", err)
		}
		// fn's error rolls the row back too.
		k2 := message.Key{UID: "uid-2", Namespace: "shop", Name: "order-2"}
		boom := errors.New("boom")
		if err := o.RunLocal(ctx, k2, func(context.Context, *sql.Tx) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("want fn's error, got %v", err)
		}
		if s, _ := o.State(ctx, k2.UID); s != "" {
			t.Fatalf("failed RunLocal left state %q", s)
		}
		if n := orders(t, db); n != 1 {
			t.Fatalf("orders = %d", n)
		}
	})
}

func TestCheckPreparedFirstRollsBack(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		ctx := context.Background()
		o, err := message.NewOutbox(ctx, db, d.dialect, barrier.WithLockTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		k := message.Key{UID: "uid-late", Namespace: "shop", Name: "late"}
		// The check-back comes before the local transaction: absent → claimed rolled back.
		if s, err := check(o, k); err != nil || s != kubetxv1.CheckPreparedResponse_STATE_ROLLED_BACK {
			t.Fatalf("check-back: %v %v", s, err)
		}
		ran := false
		err = o.RunLocal(ctx, k, func(context.Context, *sql.Tx) error { ran = true; return nil })
		if !errors.Is(err, message.ErrRolledBack) || ran {
			t.Fatalf("RunLocal after the claim: err %v, fn ran %v", err, ran)
		}
		if s, err := check(o, k); err != nil || s != kubetxv1.CheckPreparedResponse_STATE_ROLLED_BACK {
			t.Fatalf("check-back again: %v %v", s, err)
		}

		// The caller's own transaction: Prepare reports the claim, the caller rolls back.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, q(d.dialect, `INSERT INTO orders (id) VALUES (?)`), "late"); err != nil {
			t.Fatal(err)
		}
		if err := o.Prepare(ctx, tx, k); !errors.Is(err, message.ErrRolledBack) {
			t.Fatalf("Prepare after the claim: %v", err)
		}
		_ = tx.Rollback()
		if n := orders(t, db); n != 0 {
			t.Fatalf("orders = %d after the rolled-back message", n)
		}
	})
}

// The check-back arriving while the local transaction is open waits for it:
// commit → COMMITTED; rollback → ROLLED_BACK. And a check-back claim racing
// many local transactions never contradicts what the database holds.
func TestCheckPreparedRacesLocalTransaction(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		ctx := context.Background()
		o, err := message.NewOutbox(ctx, db, d.dialect, barrier.WithLockTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		for _, commit := range []bool{true, false} {
			k := message.Key{UID: fmt.Sprintf("uid-open-%v", commit), Namespace: "shop", Name: "open"}
			inside := make(chan struct{})
			finish := make(chan struct{})
			local := make(chan error, 1)
			go func() {
				local <- o.RunLocal(ctx, k, func(ctx context.Context, tx *sql.Tx) error {
					close(inside)
					<-finish
					if !commit {
						return errors.New("business rule failed")
					}
					return nil
				})
			}()
			<-inside
			answer := make(chan kubetxv1.CheckPreparedResponse_State, 1)
			go func() {
				s, err := check(o, k)
				if err != nil {
					t.Error(err)
				}
				answer <- s
			}()
			time.Sleep(150 * time.Millisecond) // the check-back is now waiting on the key
			close(finish)
			lerr := <-local
			s := <-answer
			want := kubetxv1.CheckPreparedResponse_STATE_COMMITTED
			if !commit {
				want = kubetxv1.CheckPreparedResponse_STATE_ROLLED_BACK
			}
			if s != want || (lerr == nil) != commit {
				t.Fatalf("commit=%v: check-back %v, RunLocal %v", commit, s, lerr)
			}
		}

		const n = 100
		var wg sync.WaitGroup
		localErr := make([]error, n)
		states := make([]kubetxv1.CheckPreparedResponse_State, n)
		for i := range n {
			k := message.Key{UID: fmt.Sprintf("race-%03d", i), Namespace: "shop", Name: fmt.Sprintf("o-%03d", i)}
			wg.Add(2)
			go func() {
				defer wg.Done()
				localErr[i] = o.RunLocal(ctx, k, func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, q(d.dialect, `INSERT INTO orders (id) VALUES (?)`), k.Name)
					return err
				})
			}()
			go func() {
				defer wg.Done()
				var err error
				states[i], err = check(o, k)
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		committed := 0
		for i := range n {
			switch {
			case localErr[i] == nil:
				if states[i] != kubetxv1.CheckPreparedResponse_STATE_COMMITTED {
					t.Fatalf("race-%03d committed but the check-back said %v", i, states[i])
				}
				committed++
			case errors.Is(localErr[i], message.ErrRolledBack):
				if states[i] != kubetxv1.CheckPreparedResponse_STATE_ROLLED_BACK {
					t.Fatalf("race-%03d rolled back but the check-back said %v", i, states[i])
				}
			default:
				t.Fatalf("race-%03d: %v", i, localErr[i])
			}
		}
		if got := orders(t, db); got != committed {
			t.Fatalf("orders = %d, want %d", got, committed)
		}
		t.Logf("%s: %d of %d local transactions won the race", d.name, committed, n)
	})
}

func TestOutboxCleanup(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		o, err := message.NewOutbox(ctx, db, d.dialect, barrier.WithTable("my_outbox"), barrier.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		noop := func(context.Context, *sql.Tx) error { return nil }
		if err := o.RunLocal(ctx, message.Key{UID: "old"}, noop); err != nil {
			t.Fatal(err)
		}
		if _, err := check(o, message.Key{UID: "old-claim"}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(8 * 24 * time.Hour)
		if err := o.RunLocal(ctx, message.Key{UID: "new"}, noop); err != nil {
			t.Fatal(err)
		}
		if n, err := o.Cleanup(ctx, 7*24*time.Hour); err != nil || n != 2 {
			t.Fatalf("cleanup: %d %v, want 2", n, err)
		}
		if s, _ := o.State(ctx, "new"); s != message.StateCommitted {
			t.Fatalf("new: %q", s)
		}
		if _, err := message.NewOutbox(ctx, db, d.dialect, barrier.WithTable("bad name")); err == nil {
			t.Fatal("bad table name accepted")
		}
	})
}

package barrier_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

func req(uid string) *participant.Request {
	return &participant.Request{TransactionUID: uid, Namespace: "ns", Name: "tx", Branch: "stock", Payload: []byte(`{"qty":1}`), Attempt: 1}
}

// counting is a handler that counts its runs and answers with fixed data.
type counting struct {
	runs int
	data []byte
	err  error
}

func (c *counting) handle(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	c.runs++
	if c.err != nil {
		return nil, c.err
	}
	return &participant.Response{Message: "done", Data: c.data}, nil
}

func wantRefused(t *testing.T, err error, code codes.Code) {
	t.Helper()
	var r *participant.Refused
	if !errors.As(err, &r) {
		t.Fatalf("want *participant.Refused (%v), got %v", code, err)
	}
	if r.GRPCCode() != code {
		t.Fatalf("want code %v, got %v (%s)", code, r.GRPCCode(), r.Message)
	}
}

func TestRepeatedCallRunsOnce(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		for _, m := range []barrier.Method{barrier.Try, barrier.Execute, barrier.Deliver} {
			h := &counting{data: []byte(`{"hold":"h-1"}`)}
			r := req("uid-repeat-" + string(m))
			for i := 0; i < 3; i++ {
				resp, outcome, err := b.Run(ctx, m, r, h.handle)
				if err != nil {
					t.Fatalf("%s #%d: %v", m, i, err)
				}
				want := barrier.Executed
				if i > 0 {
					want = barrier.Duplicate
				}
				if outcome != want || resp.Message != "done" || !bytes.Equal(resp.Data, h.data) {
					t.Fatalf("%s #%d: outcome %v, response %q/%q", m, i, outcome, resp.Message, resp.Data)
				}
			}
			if h.runs != 1 {
				t.Fatalf("%s: handler ran %d times, want 1", m, h.runs)
			}
		}
	})
}

func TestNullCompensationAndAntiHanging(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		for _, pair := range [][2]barrier.Method{{barrier.Cancel, barrier.Try}, {barrier.Compensate, barrier.Execute}} {
			comp, fwd := pair[0], pair[1]
			r := req("uid-null-" + string(comp))
			h := &counting{}
			resp, outcome, err := b.Run(ctx, comp, r, h.handle)
			if err != nil || outcome != barrier.NullCompensation {
				t.Fatalf("%s first: outcome %v, err %v", comp, outcome, err)
			}
			if !strings.Contains(resp.Message, "null compensation") || h.runs != 0 {
				t.Fatalf("%s: message %q, handler ran %d times", comp, resp.Message, h.runs)
			}
			// The late forward call is refused and its handler never runs: the hold never applies.
			fh := &counting{}
			_, _, err = b.Run(ctx, fwd, r, fh.handle)
			wantRefused(t, err, codes.Aborted)
			if fh.runs != 0 {
				t.Fatalf("%s after %s ran its handler", fwd, comp)
			}
			// A repeat of the compensation is answered from its row.
			if _, outcome, err = b.Run(ctx, comp, r, h.handle); err != nil || outcome != barrier.Duplicate || h.runs != 0 {
				t.Fatalf("%s repeat: outcome %v, err %v, runs %d", comp, outcome, err, h.runs)
			}
			row, err := b.Get(ctx, r.TransactionUID, r.Branch, fwd)
			if err != nil || row == nil || row.Origin != "blocker" {
				t.Fatalf("%s row: %+v, %v", fwd, row, err)
			}
		}
	})
}

func TestCompensationAfterForwardRunsHandler(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		r := req("uid-try-cancel")
		try, cancel := &counting{data: []byte("x")}, &counting{}
		if _, _, err := b.Run(ctx, barrier.Try, r, try.handle); err != nil {
			t.Fatal(err)
		}
		_, outcome, err := b.Run(ctx, barrier.Cancel, r, cancel.handle)
		if err != nil || outcome != barrier.Executed || cancel.runs != 1 {
			t.Fatalf("Cancel after Try: outcome %v, err %v, runs %d", outcome, err, cancel.runs)
		}
		// Confirm after Cancel is a protocol violation.
		_, _, err = b.Run(ctx, barrier.Confirm, r, (&counting{}).handle)
		wantRefused(t, err, codes.FailedPrecondition)
	})
}

func TestProtocolViolations(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		h := &counting{}

		_, _, err := b.Run(ctx, barrier.Confirm, req("uid-confirm-no-try"), h.handle)
		wantRefused(t, err, codes.FailedPrecondition)

		r := req("uid-cancel-after-confirm")
		if _, _, err := b.Run(ctx, barrier.Try, r, h.handle); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Run(ctx, barrier.Confirm, r, h.handle); err != nil {
			t.Fatal(err)
		}
		_, _, err = b.Run(ctx, barrier.Cancel, r, h.handle)
		wantRefused(t, err, codes.FailedPrecondition)
		if h.runs != 2 {
			t.Fatalf("handler ran %d times, want 2 (Try, Confirm)", h.runs)
		}
		// Refusals record nothing: Confirm without Try left no Confirm row.
		if row, err := b.Get(ctx, "uid-confirm-no-try", "stock", barrier.Confirm); err != nil || row != nil {
			t.Fatalf("refused Confirm left a row: %+v %v", row, err)
		}
		// Missing key parts.
		_, _, err = b.Run(ctx, barrier.Try, &participant.Request{Branch: "b"}, h.handle)
		wantRefused(t, err, codes.FailedPrecondition)
	})
}

func TestHandlerFailureRecordsNothing(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE holds (uid VARCHAR(64) PRIMARY KEY, qty INT NOT NULL)`)
		fail := errors.New("database hiccup")
		runs := 0
		h := func(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
			runs++
			if _, err := tx.ExecContext(ctx, q(d.dialect, `INSERT INTO holds (uid, qty) VALUES (?, 1)`), r.TransactionUID); err != nil {
				return nil, err
			}
			switch runs {
			case 1:
				return nil, fail
			case 2:
				return nil, participant.Refuse("no stock")
			case 3:
				return &participant.Response{Data: make([]byte, participant.MaxDataBytes+1)}, nil
			case 4:
				panic("boom")
			}
			return &participant.Response{Message: "held"}, nil
		}
		r := req("uid-fail")
		if _, _, err := b.Run(ctx, barrier.Try, r, h); !errors.Is(err, fail) {
			t.Fatalf("want the handler's error back, got %v", err)
		}
		_, _, err := b.Run(ctx, barrier.Try, r, h)
		wantRefused(t, err, codes.Aborted)
		_, _, err = b.Run(ctx, barrier.Try, r, h)
		var tooLarge *participant.DataTooLargeError
		if !errors.As(err, &tooLarge) {
			t.Fatalf("want DataTooLargeError, got %v", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the handler's panic did not come through")
				}
			}()
			_, _, _ = b.Run(ctx, barrier.Try, r, h)
		}()
		if n := count(t, db, `SELECT COUNT(*) FROM holds`); n != 0 {
			t.Fatalf("failed handlers left %d holds", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM kubetx_barrier`); n != 0 {
			t.Fatalf("failed handlers left %d barrier rows", n)
		}
		// The retry runs the handler and records it.
		resp, outcome, err := b.Run(ctx, barrier.Try, r, h)
		if err != nil || outcome != barrier.Executed || resp.Message != "held" || runs != 5 {
			t.Fatalf("retry: %v %v %v runs=%d", resp, outcome, err, runs)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM holds`); n != 1 {
			t.Fatalf("holds = %d, want 1", n)
		}
		// A Try refused by its handler left no row, so its Cancel would be a null compensation.
		r2 := req("uid-refused-then-cancel")
		if _, _, err := b.Run(ctx, barrier.Try, r2, func(context.Context, *sql.Tx, *participant.Request) (*participant.Response, error) {
			return nil, participant.Refuse("no")
		}); err == nil {
			t.Fatal("want a refusal")
		}
		if _, outcome, err := b.Run(ctx, barrier.Cancel, r2, (&counting{}).handle); err != nil || outcome != barrier.NullCompensation {
			t.Fatalf("Cancel after a refused Try: %v %v", outcome, err)
		}
	})
}

func TestRunInTx(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE ledger (uid VARCHAR(64) PRIMARY KEY)`)
		h := func(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
			_, err := tx.ExecContext(ctx, q(d.dialect, `INSERT INTO ledger (uid) VALUES (?)`), r.TransactionUID)
			return &participant.Response{Message: "in caller tx"}, err
		}
		r := req("uid-in-tx")
		// The caller rolls back: neither the effect nor the barrier row stays.
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: isolation(d)})
		if err != nil {
			t.Fatal(err)
		}
		if _, outcome, err := b.RunInTx(ctx, tx, barrier.Execute, r, h); err != nil || outcome != barrier.Executed {
			t.Fatalf("RunInTx: %v %v", outcome, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM ledger`); n != 0 {
			t.Fatalf("ledger = %d after rollback", n)
		}
		// The caller commits: both stay; a repeat is a duplicate.
		for i, want := range []barrier.Outcome{barrier.Executed, barrier.Duplicate} {
			tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: isolation(d)})
			if err != nil {
				t.Fatal(err)
			}
			if _, outcome, err := b.RunInTx(ctx, tx, barrier.Execute, r, h); err != nil || outcome != want {
				t.Fatalf("#%d: %v %v", i, outcome, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM ledger`); n != 1 {
			t.Fatalf("ledger = %d, want 1", n)
		}
	})
}

func isolation(d dialect) sql.IsolationLevel {
	if d.dialect == barrier.SQLite {
		return sql.LevelDefault
	}
	return sql.LevelReadCommitted
}

func TestCleanupDeletesWholeOldTransactions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		b := newBarrier(t, d, db, barrier.WithClock(func() time.Time { return now }))
		ctx := context.Background()
		h := (&counting{}).handle
		if _, _, err := b.Run(ctx, barrier.Try, req("old"), h); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Run(ctx, barrier.Cancel, req("mixed"), h); err != nil { // two rows: Try blocker + Cancel
			t.Fatal(err)
		}
		now = now.Add(8 * 24 * time.Hour)
		if _, _, err := b.Run(ctx, barrier.Confirm, req("mixed"), h); err == nil {
			t.Fatal("Confirm after Cancel should be refused")
		}
		if _, _, err := b.Run(ctx, barrier.Try, &participant.Request{TransactionUID: "mixed", Branch: "other"}, h); err != nil {
			t.Fatal(err) // a new row for uid "mixed": its newest row is recent
		}
		if _, _, err := b.Run(ctx, barrier.Try, req("new"), h); err != nil {
			t.Fatal(err)
		}
		n, err := b.Cleanup(ctx, barrier.DefaultRetention)
		if err != nil || n != 1 {
			t.Fatalf("cleanup: %d rows, %v; want 1 (uid old)", n, err)
		}
		if left := count(t, db, `SELECT COUNT(*) FROM kubetx_barrier`); left != 4 {
			t.Fatalf("%d rows left, want 4", left)
		}
	})
}

func TestTableOptionAndValidation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		ctx := context.Background()
		for _, bad := range []string{"x; DROP TABLE y", "1abc", "a-b", ""} {
			if bad == "" {
				continue
			}
			if _, err := barrier.New(ctx, db, d.dialect, barrier.WithTable(bad)); err == nil {
				t.Fatalf("table %q accepted", bad)
			}
		}
		b := newBarrier(t, d, db, barrier.WithTable("my_barrier"), barrier.WithLockTimeout(2*time.Second))
		if _, _, err := b.Run(ctx, barrier.Deliver, req("u"), (&counting{}).handle); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM my_barrier`); n != 1 {
			t.Fatalf("rows in my_barrier: %d", n)
		}
		// New again on an existing table is fine (a second process starting).
		newBarrier(t, d, db, barrier.WithTable("my_barrier"))
	})
}

// A row written by another language's SDK (same table layout) is honoured.
func TestSharedTableLayout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db)
		ctx := context.Background()
		mustExec(t, db, q(d.dialect, `INSERT INTO kubetx_barrier (uid, branch, method, origin, created_at, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			"ts-uid", "stock", "Try", "call", time.Now().UnixMilli(), "held by TypeScript", []byte(`{"hold":7}`))
		resp, outcome, err := b.Run(ctx, barrier.Try, req("ts-uid"), (&counting{}).handle)
		if err != nil || outcome != barrier.Duplicate || resp.Message != "held by TypeScript" || string(resp.Data) != `{"hold":7}` {
			t.Fatalf("%v %v %v", resp, outcome, err)
		}
		if _, outcome, err := b.Run(ctx, barrier.Confirm, req("ts-uid"), (&counting{}).handle); err != nil || outcome != barrier.Executed {
			t.Fatalf("Confirm: %v %v", outcome, err)
		}
	})
}

// Several processes starting at once all get a working barrier.
func TestConcurrentNew(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = barrier.New(context.Background(), db, d.dialect, barrier.WithTable("shared_barrier"))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("New #%d: %v", i, err)
			}
		}
	})
}

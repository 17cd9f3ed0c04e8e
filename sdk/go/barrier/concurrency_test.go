package barrier_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

// retry calls fn like the operator would: again on any error but a refusal.
func retry(fn func() (barrier.Outcome, error)) (barrier.Outcome, error) {
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		var outcome barrier.Outcome
		outcome, err = fn()
		var refused *participant.Refused
		if err == nil || errors.As(err, &refused) {
			return outcome, err
		}
		time.Sleep(time.Duration(1+rand.IntN(10)) * time.Millisecond)
	}
	return 0, fmt.Errorf("still failing after 100 attempts: %w", err)
}

// holds is a business table: Try adds a hold, Cancel releases it.
type holds struct {
	d        barrier.Dialect
	mu       sync.Mutex
	released int
}

func (h *holds) Try(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	if _, err := tx.ExecContext(ctx, q(h.d, `INSERT INTO holds (uid, qty) VALUES (?, 1)`), r.TransactionUID); err != nil {
		return nil, err
	}
	time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // widen the race window
	return &participant.Response{Data: []byte(r.TransactionUID)}, nil
}

func (h *holds) Confirm(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return nil, nil
}

func (h *holds) Cancel(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	res, err := tx.ExecContext(ctx, q(h.d, `DELETE FROM holds WHERE uid = ?`), r.TransactionUID)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		// The barrier let a compensation run without a committed Try: a bug.
		return nil, fmt.Errorf("cancel %s: %d holds to release", r.TransactionUID, n)
	}
	h.mu.Lock()
	h.released++
	h.mu.Unlock()
	return &participant.Response{Message: "released"}, nil
}

// Try and Cancel of 200 transactions fired at once over real concurrent
// connections: every transaction ends with no hold, either (Try ran, Cancel
// released it) or (Cancel null-compensated, Try refused).
func TestTryCancelRace(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db, barrier.WithLockTimeout(10*time.Second))
		mustExec(t, db, `CREATE TABLE holds (uid VARCHAR(64) PRIMARY KEY, qty INT NOT NULL)`)
		h := &holds{d: d.dialect}
		ctx := context.Background()

		const n = 200
		type result struct {
			try, cancel       barrier.Outcome
			tryErr, cancelErr error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			r := req(fmt.Sprintf("race-%03d", i))
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				results[i].try, results[i].tryErr = retry(func() (barrier.Outcome, error) {
					_, o, err := b.Run(ctx, barrier.Try, r, h.Try)
					return o, err
				})
			}()
			go func() {
				defer wg.Done()
				<-start
				if rand.IntN(2) == 0 {
					time.Sleep(time.Millisecond)
				}
				results[i].cancel, results[i].cancelErr = retry(func() (barrier.Outcome, error) {
					_, o, err := b.Run(ctx, barrier.Cancel, r, h.Cancel)
					if err == nil && o == barrier.Duplicate {
						// An earlier attempt committed after all: read what it did.
						row, rerr := b.Get(ctx, r.TransactionUID, r.Branch, barrier.Cancel)
						if rerr != nil {
							return 0, rerr
						}
						if row.Message == "released" {
							return barrier.Executed, nil
						}
						return barrier.NullCompensation, nil
					}
					return o, err
				})
			}()
		}
		close(start)
		wg.Wait()

		ran, fenced := 0, 0
		for i, res := range results {
			if res.cancelErr != nil {
				t.Fatalf("race-%03d: Cancel failed: %v", i, res.cancelErr)
			}
			switch {
			case res.tryErr == nil && res.try == barrier.Executed:
				if res.cancel != barrier.Executed {
					t.Fatalf("race-%03d: Try ran but Cancel was %v", i, res.cancel)
				}
				ran++
			case res.tryErr != nil:
				wantRefused(t, res.tryErr, codes.Aborted)
				if res.cancel != barrier.NullCompensation {
					t.Fatalf("race-%03d: Try refused but Cancel was %v", i, res.cancel)
				}
				fenced++
			default:
				t.Fatalf("race-%03d: Try outcome %v", i, res.try)
			}
		}
		if left := count(t, db, `SELECT COUNT(*) FROM holds`); left != 0 {
			t.Fatalf("%d holds left hanging", left)
		}
		if h.released != ran {
			t.Fatalf("released %d holds, %d Tries ran", h.released, ran)
		}
		t.Logf("%s: %d Try-then-Cancel, %d Cancel-then-refused-Try", d.name, ran, fenced)
	})
}

// Identical concurrent calls: the handler runs once, every caller gets OK with the same answer.
func TestIdenticalConcurrentCalls(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db, barrier.WithLockTimeout(10*time.Second))
		mustExec(t, db, `CREATE TABLE counters (name VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`)
		mustExec(t, db, `INSERT INTO counters (name, n) VALUES ('try', 0), ('confirm', 0)`)
		ctx := context.Background()
		bump := func(name string) barrier.Handler {
			return func(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
				if _, err := tx.ExecContext(ctx, q(d.dialect, `UPDATE counters SET n = n + 1 WHERE name = ?`), name); err != nil {
					return nil, err
				}
				time.Sleep(20 * time.Millisecond)
				return &participant.Response{Message: name + " applied", Data: []byte(name)}, nil
			}
		}
		r := req("same-key")
		for _, m := range []barrier.Method{barrier.Try, barrier.Confirm} {
			const callers = 20
			outcomes := make([]barrier.Outcome, callers)
			errs := make([]error, callers)
			resps := make([]*participant.Response, callers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					outcomes[i], errs[i] = retry(func() (barrier.Outcome, error) {
						resp, o, err := b.Run(ctx, m, r, bump(strings.ToLower(string(m))))
						resps[i] = resp
						return o, err
					})
				}()
			}
			close(start)
			wg.Wait()
			executed := 0
			for i := range callers {
				if errs[i] != nil {
					t.Fatalf("%s caller %d: %v", m, i, errs[i])
				}
				if outcomes[i] == barrier.Executed {
					executed++
				}
				if string(resps[i].Data) != strings.ToLower(string(m)) {
					t.Fatalf("%s caller %d got data %q", m, i, resps[i].Data)
				}
			}
			name := map[barrier.Method]string{barrier.Try: "try", barrier.Confirm: "confirm"}[m]
			if n := count(t, db, q(d.dialect, `SELECT n FROM counters WHERE name = ?`), name); n != 1 || executed != 1 {
				t.Fatalf("%s applied %d times, %d callers saw executed (%s)", m, n, executed, name)
			}
		}
	})
}

// A call waiting longer than the lock timeout fails retryably (not a refusal).
func TestLockTimeoutIsRetryable(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		b := newBarrier(t, d, db, barrier.WithLockTimeout(time.Second))
		ctx := context.Background()
		r := req("held-key")
		holding := make(chan struct{})
		release := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, _, err := b.Run(ctx, barrier.Try, r, func(context.Context, *sql.Tx, *participant.Request) (*participant.Response, error) {
				close(holding)
				<-release
				return nil, nil
			})
			done <- err
		}()
		<-holding
		started := time.Now()
		_, _, err := b.Run(ctx, barrier.Try, r, (&counting{}).handle)
		close(release)
		if err == nil {
			t.Fatal("the second call did not time out")
		}
		if st := participant.Status(err); st.Code() != codes.Unavailable {
			t.Fatalf("lock timeout answered %v (%v), want UNAVAILABLE", st.Code(), err)
		}
		if waited := time.Since(started); waited > 8*time.Second {
			t.Fatalf("waited %v for a 1s lock timeout", waited)
		}
		if err := <-done; err != nil {
			t.Fatalf("holder: %v", err)
		}
	})
}

// WithLockTimeout changes a pooled connection's session only for the call:
// the next user of the connection sees the server's setting again.
func TestLockTimeoutRestoresSession(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect, db *sql.DB) {
		setting := map[barrier.Dialect]string{
			barrier.Postgres: `SELECT CASE WHEN current_setting('lock_timeout') = '0' THEN 0 ELSE 1 END`, // SET LOCAL ends with the tx
			barrier.MySQL:    `SELECT @@SESSION.innodb_lock_wait_timeout`,
			barrier.SQLite:   `PRAGMA busy_timeout`,
		}[d.dialect]
		db.SetMaxOpenConns(1) // one connection: the barrier's and ours
		before := count(t, db, setting)
		b := newBarrier(t, d, db, barrier.WithLockTimeout(3*time.Second))
		if _, _, err := b.Run(context.Background(), barrier.Try, req("restore"), (&counting{}).handle); err != nil {
			t.Fatal(err)
		}
		if after := count(t, db, setting); after != before {
			t.Fatalf("session setting %d after Run, %d before", after, before)
		}
	})
}

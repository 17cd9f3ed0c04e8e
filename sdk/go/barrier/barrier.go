package barrier

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kubetx/kubetx/sdk/go/internal/sqldb"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

// Barrier applies the barrier rules over one table of a database. It is safe
// for concurrent use.
type Barrier struct {
	db      *sql.DB
	dialect sqldb.Dialect
	cfg     config
	sql     statements
}

// Handler is a business handler run inside the barrier: it must do its
// reads and writes through tx, and must not Commit or Rollback it.
type Handler func(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error)

// New returns a barrier on db, creating the table and its <table>_created_at
// index if missing (safe when several processes start at once).
func New(ctx context.Context, db *sql.DB, dialect Dialect, opts ...Option) (*Barrier, error) {
	d := sqldb.Dialect(dialect)
	if !d.Valid() {
		return nil, fmt.Errorf("barrier: unknown dialect %d", int(dialect))
	}
	if db == nil {
		return nil, fmt.Errorf("barrier: nil *sql.DB")
	}
	b := &Barrier{db: db, dialect: d}
	for _, o := range opts {
		o(&b.cfg)
	}
	if b.cfg.Table == "" {
		b.cfg.Table = DefaultTable
	}
	if err := sqldb.ValidateTable(d, b.cfg.Table); err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	if b.cfg.LockTimeout < 0 {
		return nil, fmt.Errorf("barrier: negative lock timeout %v", b.cfg.LockTimeout)
	}
	b.sql = newStatements(d, b.cfg.Table)
	if err := sqldb.Ensure(ctx, db, d, sqldb.Table{Name: b.cfg.Table, DDL: b.sql.ddl}); err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	return b, nil
}

// Table is the barrier table's name.
func (b *Barrier) Table() string { return b.cfg.Table }

// Run opens a transaction on the barrier's database (READ COMMITTED on
// PostgreSQL and MySQL, the driver's BEGIN on SQLite), applies the rules,
// runs h in it when they say so, and commits the barrier row with h's
// effect. If h returns an error (a refusal included) or panics, everything is
// rolled back, nothing is recorded, and h's error is returned unchanged.
//
// Errors of the barrier itself: *participant.Refused for anti-hanging
// (ABORTED) and protocol violations (FAILED_PRECONDITION); anything else
// (lock timeout, deadlock, lost connection, failed commit) is retryable.
func (b *Barrier) Run(ctx context.Context, method Method, r *participant.Request, h Handler) (*participant.Response, Outcome, error) {
	if err := b.check(method, r); err != nil {
		return nil, 0, err
	}
	var (
		resp    *participant.Response
		outcome Outcome
	)
	err := sqldb.InTx(ctx, b.db, b.dialect, b.cfg.LockTimeout, func(tx *sql.Tx) error {
		var err error
		resp, outcome, err = b.apply(ctx, tx, method, r, h)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return resp, outcome, nil
}

// RunInTx applies the rules and runs h in the caller's own transaction, so
// the barrier row commits with whatever else the caller does in tx; the
// caller commits (or rolls back on an error). Use a READ COMMITTED
// transaction on PostgreSQL and MySQL; on SQLite a write (IMMEDIATE)
// transaction, or the barrier's first INSERT may fail with SQLITE_BUSY after
// the caller's reads.
func (b *Barrier) RunInTx(ctx context.Context, tx *sql.Tx, method Method, r *participant.Request, h Handler) (*participant.Response, Outcome, error) {
	if err := b.check(method, r); err != nil {
		return nil, 0, err
	}
	if tx == nil {
		return nil, 0, fmt.Errorf("barrier: RunInTx with a nil *sql.Tx")
	}
	return b.apply(ctx, tx, method, r, h)
}

func (b *Barrier) check(method Method, r *participant.Request) error {
	if !method.valid() {
		return fmt.Errorf("barrier: unknown method %q", method)
	}
	if r == nil || r.TransactionUID == "" || r.Branch == "" {
		return &participant.Refused{Message: "transaction_uid and branch are required", Code: codesFailedPrecondition}
	}
	if b.dialect == sqldb.MySQL {
		if err := checkMySQLKey(r, method); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup deletes the rows of every transaction whose newest row is older
// than olderThan, always whole transactions (all branches and methods of a
// uid), and returns how many rows went.
//
// Choose the age so that no call for the transaction can still arrive:
// longer than its timeout plus the operator's whole retry horizon
// (DefaultRetention, 7 days, is customary). Deleting earlier breaks
// idempotency (a late repeat of Cancel would run again) and anti-hanging (a
// late Try would no longer find its blocker).
func (b *Barrier) Cleanup(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("barrier: cleanup: negative age %v", olderThan)
	}
	cutoff := b.cfg.NowMillis() - olderThan.Milliseconds()
	res, err := b.db.ExecContext(ctx, b.sql.cleanup, cutoff)
	if err != nil {
		return 0, fmt.Errorf("barrier: cleanup %s: %w", b.cfg.Table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("barrier: cleanup %s: %w", b.cfg.Table, err)
	}
	return n, nil
}

// Row is a stored barrier row (inspection and tests).
type Row struct {
	// Origin is "call" (the method ran) or "blocker" (inserted by a
	// Cancel/Compensate to fence out a late Try/Execute).
	Origin  string
	Message string
	Data    []byte
}

// Get returns the committed row for (uid, branch, method), or nil.
func (b *Barrier) Get(ctx context.Context, uid, branch string, method Method) (*Row, error) {
	row, err := scanRow(b.db.QueryRowContext(ctx, b.sql.selectRow, uid, branch, string(method)))
	if err != nil {
		return nil, fmt.Errorf("barrier: read %s/%s/%s: %w", uid, branch, method, err)
	}
	return row, nil
}

func scanRow(s *sql.Row) (*Row, error) {
	var (
		r   Row
		msg sql.NullString
	)
	if err := s.Scan(&r.Origin, &msg, &r.Data); err != nil {
		if err == sql.ErrNoRows {
			return nil, nil
		}
		return nil, err
	}
	r.Message = msg.String
	return &r, nil
}

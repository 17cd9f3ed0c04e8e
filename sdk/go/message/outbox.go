package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"
	"github.com/kubetx/kubetx/sdk/go/internal/sqldb"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

// DefaultTable is the outbox table's default name (the TypeScript SDK's too).
const DefaultTable = "kubetx_prepared_messages"

// Outbox row states.
const (
	StateCommitted  = "committed"
	StateRolledBack = "rolled_back"
)

// ErrRolledBack: the check-back already answered ROLLED_BACK for this uid,
// so the local transaction must not commit.
var ErrRolledBack = errors.New("message: already resolved as rolled back by a check-back")

// Key identifies a prepared message: the DistributedTransaction's
// metadata.uid, namespace and name.
type Key struct {
	UID, Namespace, Name string
}

// Outbox is the upstream's local message table. It implements
// participant.Source (CheckPrepared). Safe for concurrent use.
type Outbox struct {
	db      *sql.DB
	dialect sqldb.Dialect
	cfg     sqldb.Config
	sql     outboxStatements
}

// NewOutbox returns the outbox on db, creating its table and
// <table>_created_at index if missing. Options: barrier.WithTable (default
// DefaultTable), barrier.WithLockTimeout (for RunLocal's transaction).
func NewOutbox(ctx context.Context, db *sql.DB, dialect barrier.Dialect, opts ...barrier.Option) (*Outbox, error) {
	d := sqldb.Dialect(dialect)
	if !d.Valid() {
		return nil, fmt.Errorf("message: unknown dialect %d", int(dialect))
	}
	if db == nil {
		return nil, fmt.Errorf("message: nil *sql.DB")
	}
	o := &Outbox{db: db, dialect: d}
	for _, opt := range opts {
		opt(&o.cfg)
	}
	if o.cfg.Table == "" {
		o.cfg.Table = DefaultTable
	}
	if err := sqldb.ValidateTable(d, o.cfg.Table); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	o.sql = newOutboxStatements(d, o.cfg.Table)
	if err := sqldb.Ensure(ctx, db, d, sqldb.Table{Name: o.cfg.Table, DDL: o.sql.ddl}); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	return o, nil
}

// Table is the outbox table's name.
func (o *Outbox) Table() string { return o.cfg.Table }

// Prepare inserts the 'committed' row for k in the caller's business
// transaction; it commits or rolls back with it. Call it before the business
// change: the row's key lock then holds off a concurrent check-back until tx
// ends. It returns an error wrapping ErrRolledBack when a check-back already
// claimed k as rolled back (roll tx back), and another error when the
// message was already prepared.
func (o *Outbox) Prepare(ctx context.Context, tx *sql.Tx, k Key) error {
	if k.UID == "" {
		return fmt.Errorf("message: prepare: the key needs a transaction uid")
	}
	if err := o.checkKey(k.UID, k.Namespace, k.Name); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, o.sql.insert, k.UID, k.Namespace, k.Name, StateCommitted, o.cfg.NowMillis())
	if err != nil {
		return fmt.Errorf("message: prepare %s/%s (%s): %w", k.Namespace, k.Name, k.UID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("message: prepare %s/%s (%s): %w", k.Namespace, k.Name, k.UID, err)
	}
	if n == 1 {
		return nil
	}
	var state string
	if err := tx.QueryRowContext(ctx, o.sql.state, k.UID).Scan(&state); err != nil {
		return fmt.Errorf("message: prepare %s/%s (%s): read the existing row: %w", k.Namespace, k.Name, k.UID, err)
	}
	if state == StateRolledBack {
		return fmt.Errorf("message %s/%s (%s): %w; the local transaction must not commit", k.Namespace, k.Name, k.UID, ErrRolledBack)
	}
	return fmt.Errorf("message %s/%s (%s): the local transaction already committed", k.Namespace, k.Name, k.UID)
}

// RunLocal runs one local transaction: Prepare first, then fn, then commit.
// When a check-back already claimed k, fn does not run and the error wraps
// ErrRolledBack; fn's error (or panic) rolls everything back and is returned
// unchanged.
func (o *Outbox) RunLocal(ctx context.Context, k Key, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return sqldb.InTx(ctx, o.db, o.dialect, o.cfg.LockTimeout, func(tx *sql.Tx) error {
		if err := o.Prepare(ctx, tx, k); err != nil {
			return err
		}
		return fn(ctx, tx)
	})
}

// CheckPrepared is the check-back (participant.Source): COMMITTED if the row
// says so, ROLLED_BACK if it says rolled_back; with no row it first claims
// the uid as 'rolled_back' in its own short transaction (waiting for a local
// transaction in flight on the same uid) and answers from what is stored then.
func (o *Outbox) CheckPrepared(ctx context.Context, r *kubetxv1.CheckPreparedRequest) (kubetxv1.CheckPreparedResponse_State, error) {
	uid := r.GetTransactionUid()
	if uid == "" {
		return kubetxv1.CheckPreparedResponse_STATE_UNKNOWN, fmt.Errorf("message: CheckPrepared without a transaction_uid")
	}
	if err := o.checkKey(uid, r.GetNamespace(), r.GetName()); err != nil {
		return kubetxv1.CheckPreparedResponse_STATE_UNKNOWN, err
	}
	// Autocommit: the INSERT is a transaction of its own and waits on the
	// key lock of a RunLocal in flight.
	if _, err := o.db.ExecContext(ctx, o.sql.insert, uid, r.GetNamespace(), r.GetName(), StateRolledBack, o.cfg.NowMillis()); err != nil {
		return kubetxv1.CheckPreparedResponse_STATE_UNKNOWN, fmt.Errorf("message: claim %s: %w", uid, err)
	}
	state, err := o.State(ctx, uid)
	if err != nil {
		return kubetxv1.CheckPreparedResponse_STATE_UNKNOWN, err
	}
	switch state {
	case StateCommitted:
		return kubetxv1.CheckPreparedResponse_STATE_COMMITTED, nil
	case StateRolledBack:
		return kubetxv1.CheckPreparedResponse_STATE_ROLLED_BACK, nil
	}
	return kubetxv1.CheckPreparedResponse_STATE_UNKNOWN, fmt.Errorf("message: %s: row %q after the claim", uid, state)
}

// State is the stored state of uid ("" when there is no row), without claiming anything.
func (o *Outbox) State(ctx context.Context, uid string) (string, error) {
	var state string
	err := o.db.QueryRowContext(ctx, o.sql.state, uid).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("message: read %s: %w", uid, err)
	}
	return state, nil
}

// Cleanup deletes rows older than olderThan and returns how many went. Keep
// them longer than the operator can still ask (checkAfter plus its retries);
// 7 days is customary.
func (o *Outbox) Cleanup(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("message: cleanup: negative age %v", olderThan)
	}
	res, err := o.db.ExecContext(ctx, o.sql.cleanup, o.cfg.NowMillis()-olderThan.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("message: cleanup %s: %w", o.cfg.Table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("message: cleanup %s: %w", o.cfg.Table, err)
	}
	return n, nil
}

// checkKey refuses values longer than the MySQL columns: INSERT IGNORE would
// truncate them silently, and two uids could collide.
func (o *Outbox) checkKey(uid, namespace, name string) error {
	if o.dialect != sqldb.MySQL {
		return nil
	}
	if utf8.RuneCountInString(uid) > 64 || utf8.RuneCountInString(namespace) > 253 || utf8.RuneCountInString(name) > 253 {
		return participant.Invalid("message key too long for the outbox table (uid at most 64, namespace and name at most 253 characters)")
	}
	return nil
}

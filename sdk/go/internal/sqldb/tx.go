package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// InTx runs fn in a transaction of its own on a dedicated connection and
// commits, or rolls back and returns fn's error unchanged.
//
//   - PostgreSQL: READ COMMITTED; SET LOCAL lock_timeout when set.
//   - MySQL/MariaDB: READ COMMITTED; innodb_lock_wait_timeout set for the
//     session (whole seconds, at least 1) and restored afterwards.
//   - SQLite: the driver's BEGIN (open the database with _txlock=immediate);
//     busy_timeout set on the connection and restored afterwards.
func InTx(ctx context.Context, db *sql.DB, d Dialect, lockTimeout time.Duration, fn func(*sql.Tx) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get a connection: %w", err)
	}
	restore := func(context.Context) error { return nil }
	defer func() {
		// Restore on a fresh context: ctx may be done, and a pooled
		// connection must not keep our session setting.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := restore(rctx); rerr != nil {
			// Throw the connection away rather than hand it back altered.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}()

	if lockTimeout > 0 {
		switch d {
		case MySQL:
			var old int64
			if err := conn.QueryRowContext(ctx, `SELECT @@SESSION.innodb_lock_wait_timeout`).Scan(&old); err != nil {
				return fmt.Errorf("read innodb_lock_wait_timeout: %w", err)
			}
			secs := int64((lockTimeout + time.Second - 1) / time.Second)
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SET SESSION innodb_lock_wait_timeout = %d`, secs)); err != nil {
				return fmt.Errorf("set innodb_lock_wait_timeout: %w", err)
			}
			restore = func(c context.Context) error {
				_, err := conn.ExecContext(c, fmt.Sprintf(`SET SESSION innodb_lock_wait_timeout = %d`, old))
				return err
			}
		case SQLite:
			var old int64
			if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&old); err != nil {
				return fmt.Errorf("read busy_timeout: %w", err)
			}
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, lockTimeout.Milliseconds())); err != nil {
				return fmt.Errorf("set busy_timeout: %w", err)
			}
			restore = func(c context.Context) error {
				_, err := conn.ExecContext(c, fmt.Sprintf(`PRAGMA busy_timeout = %d`, old))
				return err
			}
		}
	}

	var txo *sql.TxOptions
	if d == Postgres || d == MySQL {
		// Every decision reads rows committed before the statement making it
		// and waits on row locks, never on a snapshot spanning statements;
		// under REPEATABLE READ an INSERT conflicting with a row committed
		// after the snapshot fails instead (PostgreSQL) or reads stale rows (MySQL).
		txo = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := conn.BeginTx(ctx, txo)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	defer func() {
		// A panic in fn: roll back, then let it go on up.
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if d == Postgres && lockTimeout > 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, lockTimeout.Milliseconds())); err != nil {
			return fmt.Errorf("set lock_timeout: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) {
			return fmt.Errorf("commit: the transaction was already ended (do not Commit or Rollback the barrier's tx): %w", err)
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

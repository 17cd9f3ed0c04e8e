package sqldb

import (
	"context"
	"database/sql"
	"fmt"
)

// Table describes a table to create in each dialect.
type Table struct {
	Name string
	// DDL is the CREATE TABLE IF NOT EXISTS statement. For MySQL it must
	// include the created_at index (MySQL has no CREATE INDEX IF NOT EXISTS).
	DDL string
}

// Ensure creates the table and its <table>_created_at index unless they exist.
// It is safe when several processes start at once.
func Ensure(ctx context.Context, db *sql.DB, d Dialect, t Table) error {
	idx, bareIdx := IndexName(t.Name)
	switch d {
	case Postgres:
		// Look before creating: CREATE INDEX IF NOT EXISTS locks the table
		// against writes even when the index exists, so it would wait for
		// (and block) transactions in flight in other processes.
		var tbl, ix sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT to_regclass($1)::text, to_regclass($2)::text`, t.Name, idx).Scan(&tbl, &ix); err != nil {
			return fmt.Errorf("look for table %s: %w", t.Name, err)
		}
		if tbl.Valid && ix.Valid {
			return nil
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("create table %s: begin: %w", t.Name, err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		// CREATE TABLE IF NOT EXISTS is not safe against itself run
		// concurrently (two processes starting at once): serialize it.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "kubetx_init:"+t.Name); err != nil {
			return fmt.Errorf("create table %s: lock: %w", t.Name, err)
		}
		if _, err := tx.ExecContext(ctx, t.DDL); err != nil {
			return fmt.Errorf("create table %s: %w", t.Name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (created_at)`, bareIdx, t.Name)); err != nil {
			return fmt.Errorf("create index %s: %w", idx, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("create table %s: commit: %w", t.Name, err)
		}
		return nil
	case MySQL:
		// One statement with the index inside: CREATE TABLE IF NOT EXISTS is
		// atomic under MySQL's metadata lock, so concurrent starts are fine.
		if _, err := db.ExecContext(ctx, t.DDL); err != nil {
			return fmt.Errorf("create table %s: %w", t.Name, err)
		}
		return nil
	case SQLite:
		// SQLite serializes schema changes; IF NOT EXISTS makes a second creator a no-op.
		if _, err := db.ExecContext(ctx, t.DDL); err != nil {
			return fmt.Errorf("create table %s: %w", t.Name, err)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (created_at)`, bareIdx, t.Name)); err != nil {
			return fmt.Errorf("create index %s: %w", idx, err)
		}
		return nil
	}
	return fmt.Errorf("unknown dialect %v", d)
}

package barrier

import (
	"fmt"

	"github.com/kubetx/kubetx/sdk/go/internal/sqldb"
)

// statements are the barrier's SQL for one table in one dialect.
type statements struct {
	ddl             string
	selectRow       string // uid, branch, method → origin, message, data
	selectForUpdate string
	claim           string // uid, branch, method, created_at: placeholder row, nothing on conflict
	insert          string // uid, branch, method, origin, created_at, message, data; nothing on conflict
	fill            string // origin, created_at, message, data, uid, branch, method
	cleanup         string // cutoff
}

func newStatements(d sqldb.Dialect, t string) statements {
	_, idx := sqldb.IndexName(t)
	p := d.Placeholders(7)
	where := fmt.Sprintf("uid = %s AND branch = %s AND method = %s", p[0], p[1], p[2])
	s := statements{
		selectRow: fmt.Sprintf(`SELECT origin, message, data FROM %s WHERE %s`, t, where),
		fill: fmt.Sprintf(`UPDATE %s SET origin = %s, created_at = %s, message = %s, data = %s WHERE uid = %s AND branch = %s AND method = %s`,
			t, p[0], p[1], p[2], p[3], p[4], p[5], p[6]),
		cleanup: fmt.Sprintf(`DELETE FROM %s WHERE uid IN (SELECT uid FROM %s GROUP BY uid HAVING MAX(created_at) < %s)`, t, t, p[0]),
	}
	s.selectForUpdate = s.selectRow + " FOR UPDATE"
	cols := "(uid, branch, method, origin, created_at, message, data)"
	switch d {
	case sqldb.Postgres:
		s.ddl = fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  uid text NOT NULL,
  branch text NOT NULL,
  method text NOT NULL,
  origin text NOT NULL CHECK (origin IN ('call', 'blocker')),
  created_at bigint NOT NULL,
  message text NOT NULL DEFAULT '',
  data bytea,
  PRIMARY KEY (uid, branch, method)
)`, t)
		s.claim = fmt.Sprintf(`INSERT INTO %s %s VALUES ($1, $2, $3, 'call', $4, '', NULL) ON CONFLICT (uid, branch, method) DO NOTHING`, t, cols)
		s.insert = fmt.Sprintf(`INSERT INTO %s %s VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (uid, branch, method) DO NOTHING`, t, cols)
	case sqldb.MySQL:
		// Key columns sized for MySQL's index limits; utf8mb4_bin compares
		// them byte for byte, as PostgreSQL and SQLite do. The created_at
		// index is part of the CREATE (MySQL has no CREATE INDEX IF NOT EXISTS).
		s.ddl = fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  uid VARCHAR(64) NOT NULL,
  branch VARCHAR(63) NOT NULL,
  method VARCHAR(16) NOT NULL,
  origin VARCHAR(8) NOT NULL,
  created_at BIGINT NOT NULL,
  message TEXT NOT NULL,
  data LONGBLOB NULL,
  PRIMARY KEY (uid, branch, method),
  KEY %s (created_at),
  CHECK (origin IN ('call', 'blocker'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`, t, idx)
		s.claim = fmt.Sprintf(`INSERT IGNORE INTO %s %s VALUES (?, ?, ?, 'call', ?, '', NULL)`, t, cols)
		s.insert = fmt.Sprintf(`INSERT IGNORE INTO %s %s VALUES (?, ?, ?, ?, ?, ?, ?)`, t, cols)
		// MySQL refuses a subquery on the table being deleted from unless it
		// is materialized: the GROUP BY in a derived table makes it so.
		s.cleanup = fmt.Sprintf(`DELETE FROM %s WHERE uid IN (SELECT uid FROM (SELECT uid FROM %s GROUP BY uid HAVING MAX(created_at) < ?) AS expired)`, t, t)
	case sqldb.SQLite:
		s.ddl = fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  uid TEXT NOT NULL,
  branch TEXT NOT NULL,
  method TEXT NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('call', 'blocker')),
  created_at INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  data BLOB,
  PRIMARY KEY (uid, branch, method)
)`, t)
		// SQLite has no row locks (writers are serialized): a plain read is the same as FOR UPDATE.
		s.selectForUpdate = s.selectRow
		s.claim = fmt.Sprintf(`INSERT INTO %s %s VALUES (?, ?, ?, 'call', ?, '', NULL) ON CONFLICT (uid, branch, method) DO NOTHING`, t, cols)
		s.insert = fmt.Sprintf(`INSERT INTO %s %s VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid, branch, method) DO NOTHING`, t, cols)
	}
	return s
}

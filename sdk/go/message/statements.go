package message

import (
	"fmt"

	"github.com/kubetx/kubetx/sdk/go/internal/sqldb"
)

type outboxStatements struct {
	ddl     string
	insert  string // uid, namespace, name, state, created_at; nothing on conflict
	state   string // uid → state
	cleanup string // cutoff
}

func newOutboxStatements(d sqldb.Dialect, t string) outboxStatements {
	_, idx := sqldb.IndexName(t)
	p := d.Placeholders(5)
	s := outboxStatements{
		state:   fmt.Sprintf(`SELECT state FROM %s WHERE uid = %s`, t, p[0]),
		cleanup: fmt.Sprintf(`DELETE FROM %s WHERE created_at < %s`, t, p[0]),
	}
	values := fmt.Sprintf("(uid, namespace, name, state, created_at) VALUES (%s, %s, %s, %s, %s)", p[0], p[1], p[2], p[3], p[4])
	switch d {
	case sqldb.Postgres:
		s.ddl = fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  uid text PRIMARY KEY,
  namespace text NOT NULL DEFAULT '',
  name text NOT NULL DEFAULT '',
  state text NOT NULL CHECK (state IN ('committed', 'rolled_back')),
  created_at bigint NOT NULL
)`, t)
		s.insert = fmt.Sprintf(`INSERT INTO %s %s ON CONFLICT (uid) DO NOTHING`, t, values)
	case sqldb.MySQL:
		s.ddl = fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  uid VARCHAR(64) NOT NULL PRIMARY KEY,
  namespace VARCHAR(253) NOT NULL DEFAULT '',
  name VARCHAR(253) NOT NULL DEFAULT '',
  state VARCHAR(16) NOT NULL,
  created_at BIGINT NOT NULL,
  KEY %s (created_at),
  CHECK (state IN ('committed', 'rolled_back'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`, t, idx)
		s.insert = fmt.Sprintf(`INSERT IGNORE INTO %s %s`, t, values)
	case sqldb.SQLite:
		s.ddl = fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  uid TEXT PRIMARY KEY,
  namespace TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL CHECK (state IN ('committed', 'rolled_back')),
  created_at INTEGER NOT NULL
)`, t)
		s.insert = fmt.Sprintf(`INSERT INTO %s %s ON CONFLICT (uid) DO NOTHING`, t, values)
	}
	return s
}

package sqldb

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Dialect is the SQL dialect of a database (barrier.Dialect has the same values).
type Dialect int

// The dialects; MySQL covers MariaDB.
const (
	Postgres Dialect = iota
	MySQL
	SQLite
)

// String names the dialect.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	case SQLite:
		return "sqlite"
	}
	return fmt.Sprintf("dialect(%d)", int(d))
}

// Valid reports whether d is one of the known dialects.
func (d Dialect) Valid() bool { return d == Postgres || d == MySQL || d == SQLite }

// Config is what the functional options set (barrier.Option).
type Config struct {
	// Table overrides the default table name.
	Table string
	// LockTimeout bounds lock waits in the transactions the SDK opens; 0 keeps the server's setting.
	LockTimeout time.Duration
	// Now is the clock for created_at (tests); nil means time.Now.
	Now func() time.Time
}

// NowMillis is created_at's value for now.
func (c *Config) NowMillis() int64 {
	if c.Now != nil {
		return c.Now().UnixMilli()
	}
	return time.Now().UnixMilli()
}

var (
	// A plain identifier, or schema.table (PostgreSQL schema, MySQL database).
	qualifiedIdent = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$`)
	plainIdent     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ValidateTable checks a table name before it is put into SQL text (it
// cannot be a bind parameter). SQLite takes a plain name only.
func ValidateTable(d Dialect, table string) error {
	re := qualifiedIdent
	if d == SQLite {
		re = plainIdent
	}
	if !re.MatchString(table) || len(table) > 120 {
		return fmt.Errorf("invalid table name %q: want an SQL identifier ([A-Za-z_][A-Za-z0-9_]*)%s", table,
			map[bool]string{true: "", false: ", optionally schema-qualified"}[d == SQLite])
	}
	return nil
}

// IndexName is the created_at index of table: <table>_created_at, in the table's schema.
func IndexName(table string) (qualified, bare string) {
	dot := strings.LastIndexByte(table, '.')
	bare = table[dot+1:] + "_created_at"
	if dot < 0 {
		return bare, bare
	}
	return table[:dot+1] + bare, bare
}

// Placeholders returns the dialect's bind parameters for n arguments:
// $1, $2, … for PostgreSQL, ? otherwise.
func (d Dialect) Placeholders(n int) []string {
	out := make([]string, n)
	for i := range out {
		if d == Postgres {
			out[i] = fmt.Sprintf("$%d", i+1)
		} else {
			out[i] = "?"
		}
	}
	return out
}

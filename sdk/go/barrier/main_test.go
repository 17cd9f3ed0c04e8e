package barrier_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/internal/testdb"
)

var servers *testdb.Servers

func TestMain(m *testing.M) {
	servers = testdb.New()
	code := m.Run()
	servers.Close()
	os.Exit(code)
}

// dialect is one database the table-driven tests run against.
type dialect struct {
	name    string
	dialect barrier.Dialect
	open    func(testing.TB) *sql.DB
}

func dialects() []dialect {
	return []dialect{
		{"postgres", barrier.Postgres, servers.Postgres},
		{"mariadb", barrier.MySQL, servers.MySQL},
		{"sqlite", barrier.SQLite, servers.SQLite},
	}
}

// forEachDialect runs f as a subtest per dialect, each on a fresh database.
func forEachDialect(t *testing.T, f func(t *testing.T, d dialect, db *sql.DB)) {
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			f(t, d, db)
		})
	}
}

// q rewrites ? placeholders to $n for PostgreSQL.
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

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func newBarrier(t testing.TB, d dialect, db *sql.DB, opts ...barrier.Option) *barrier.Barrier {
	t.Helper()
	b, err := barrier.New(context.Background(), db, d.dialect, opts...)
	if err != nil {
		t.Fatalf("barrier.New: %v", err)
	}
	return b
}

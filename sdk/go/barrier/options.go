package barrier

import (
	"time"

	"github.com/kubetx/kubetx/sdk/go/internal/sqldb"
)

// DefaultTable is the barrier table's default name (the TypeScript SDK's too).
const DefaultTable = "kubetx_barrier"

// DefaultRetention is Cleanup's customary age: 7 days.
const DefaultRetention = 7 * 24 * time.Hour

// Dialect is the SQL dialect of the database behind the *sql.DB.
type Dialect int

// The dialects. MySQL covers MariaDB (InnoDB).
const (
	// Postgres: github.com/jackc/pgx/v5/stdlib ("pgx") or lib/pq.
	Postgres Dialect = iota
	// MySQL: github.com/go-sql-driver/mysql, MySQL 8 or MariaDB 10.11+.
	MySQL
	// SQLite: modernc.org/sqlite ("sqlite"); open it with _txlock=immediate and a busy_timeout.
	SQLite
)

// String names the dialect.
func (d Dialect) String() string { return sqldb.Dialect(d).String() }

type config = sqldb.Config

// Option configures New (and message.NewOutbox).
type Option func(*config)

// WithTable sets the table name (default DefaultTable; for the outbox,
// kubetx_prepared_messages). PostgreSQL and MySQL accept "schema.table".
func WithTable(name string) Option { return func(c *config) { c.Table = name } }

// WithLockTimeout bounds how long a call waits for a lock (a concurrent call
// on the same key, or any lock its handler takes) in the transactions the
// SDK opens itself (Run, Outbox.RunLocal): PostgreSQL SET LOCAL
// lock_timeout, MySQL innodb_lock_wait_timeout (whole seconds, restored
// afterwards), SQLite busy_timeout. A timeout is a retryable error. With
// RunInTx the caller's transaction keeps its own settings.
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.LockTimeout = d } }

// WithClock sets the clock for created_at and Cleanup (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.Now = now } }

package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	// Drivers for the three dialects.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// Servers owns the servers one test binary started. Create it in TestMain
// and Close it after m.Run.
type Servers struct {
	pgOnce, myOnce sync.Once
	pg, my         *server
	pgErr, myErr   error
	n              atomic.Int64
}

// New returns a Servers that starts nothing until a test asks.
func New() *Servers { return &Servers{} }

// Close stops every server started and removes its directory.
func (s *Servers) Close() {
	for _, srv := range []*server{s.pg, s.my} {
		if srv != nil {
			srv.stop()
		}
	}
}

// SkipDBTests reports whether KUBETX_SKIP_DB_TESTS=1 asks to skip the server tests.
func SkipDBTests() bool { return os.Getenv("KUBETX_SKIP_DB_TESTS") == "1" }

// Postgres returns a *sql.DB (driver pgx) on a fresh database of the shared
// PostgreSQL test server; it is closed when the test ends.
func (s *Servers) Postgres(t testing.TB) *sql.DB {
	t.Helper()
	if SkipDBTests() {
		t.Skip("KUBETX_SKIP_DB_TESTS=1: PostgreSQL tests skipped")
	}
	s.pgOnce.Do(func() { s.pg, s.pgErr = startPostgres() })
	if s.pgErr != nil {
		t.Fatalf("PostgreSQL test server: %v", s.pgErr)
	}
	name := fmt.Sprintf("t%d", s.n.Add(1))
	admin, err := sql.Open("pgx", s.pg.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.open(t, "pgx", s.pg.dsn(name))
}

// MySQL returns a *sql.DB (go-sql-driver/mysql) on a fresh database of the
// shared MariaDB test server; it is closed when the test ends.
func (s *Servers) MySQL(t testing.TB) *sql.DB {
	t.Helper()
	if SkipDBTests() {
		t.Skip("KUBETX_SKIP_DB_TESTS=1: MariaDB tests skipped")
	}
	s.myOnce.Do(func() { s.my, s.myErr = startMariaDB() })
	if s.myErr != nil {
		t.Fatalf("MariaDB test server: %v", s.myErr)
	}
	name := fmt.Sprintf("t%d", s.n.Add(1))
	admin, err := sql.Open("mysql", s.my.dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.open(t, "mysql", s.my.dsn(name))
}

// SQLite returns a *sql.DB (modernc.org/sqlite) on a new file in t.TempDir(),
// opened as the SDK documents: _txlock=immediate, a busy_timeout, WAL.
func (s *Servers) SQLite(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	return s.open(t, "sqlite", SQLiteDSN(path))
}

// SQLiteDSN is the DSN the SDK recommends for modernc.org/sqlite.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
}

func (s *Servers) open(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(50)
	db.SetMaxIdleConns(50)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		t.Fatalf("connect %s: %v", driver, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// server is one running database server.
type server struct {
	dir    string
	cmd    *exec.Cmd
	done   chan struct{}
	port   int
	socket string
	dsn    func(db string) string
	stopFn func()
}

func (s *server) stop() {
	if s.stopFn != nil {
		s.stopFn()
	}
	_ = os.RemoveAll(s.dir)
}

// owner is the user a server runs as: nil when not root.
func owner(name, script string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, and the server refuses root: a %q user is needed (its Debian package creates it: bash %s): %w", name, script, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func command(cred *syscall.Credential, dir, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// The server dies with this test binary (SIGKILL, a crash), never stays behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return cmd
}

func tempDir(prefix string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no server log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// waitReady pings until the server answers or the process exits.
func waitReady(driver, dsn string, done <-chan struct{}, log string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open(driver, dsn)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = db.PingContext(ctx)
			cancel()
			_ = db.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("server exited while starting:\n%s", tail(log))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after 60s: %v\n%s", err, tail(log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startProcess starts cmd with its output in log and returns a channel closed when it exits.
func startProcess(cmd *exec.Cmd, log string) (chan struct{}, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	return done, nil
}

// stopProcess sends sig, waits up to 20s, then kills.
func stopProcess(cmd *exec.Cmd, done chan struct{}, sig syscall.Signal) {
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Package testbroker starts throwaway message brokers for the SDK's broker
// tests: a nats-server with JetStream (built by hack/nats.sh, the version
// pinned in hack/testenv.env) and Debian's redis-server (hack/redis.sh), each
// in a temp dir on free loopback ports, as test/support/nats.ts and redis.ts
// do for the TypeScript tests.
//
// Servers start lazily, once per test binary; tests keep apart by using
// streams, subjects and groups of their own. Missing binaries fail the test
// with the script to run. KUBETX_SKIP_BROKER_TESTS=1 skips them instead,
// except under CI=true, where a missing binary always fails. The servers
// get the parent-death signal, so a killed test binary does not leave them
// running. Readiness is polled (NATS /healthz, which answers once JetStream
// is up; Redis PING → PONG), never a fixed sleep.
package testbroker

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Servers owns the brokers one test binary started. Create it in TestMain
// and Close it after m.Run.
type Servers struct {
	natsOnce, redisOnce sync.Once
	nats, redis         *Server
	natsErr, redisErr   error
}

// New returns a Servers that starts nothing until a test asks.
func New() *Servers { return &Servers{} }

// Close stops every server started and removes its directory.
func (s *Servers) Close() {
	for _, srv := range []*Server{s.nats, s.redis} {
		if srv != nil {
			srv.stop()
		}
	}
}

// Server is one running broker.
type Server struct {
	// URL is nats://127.0.0.1:<port> or redis://127.0.0.1:<port>.
	URL  string
	Port int
	// Dir holds the server's store, configuration and log.
	Dir  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// LogTail is the end of the server's log, for failure messages.
func (s *Server) LogTail() string { return tail(s.log) }

func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = os.RemoveAll(s.Dir)
}

// skip skips the test when asked to and allowed to.
func skip(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("KUBETX_SKIP_BROKER_TESTS") == "1" && os.Getenv("CI") != "true" {
		t.Skipf("KUBETX_SKIP_BROKER_TESTS=1: %s tests skipped", what)
	}
}

// NATS returns the shared nats-server (JetStream on), starting it on first use.
func (s *Servers) NATS(t testing.TB) *Server {
	t.Helper()
	skip(t, "NATS")
	s.natsOnce.Do(func() { s.nats, s.natsErr = startNATS() })
	if s.natsErr != nil {
		t.Fatalf("nats-server for the tests: %v", s.natsErr)
	}
	return s.nats
}

// Redis returns the shared redis-server, starting it on first use.
func (s *Servers) Redis(t testing.TB) *Server {
	t.Helper()
	skip(t, "Redis")
	s.redisOnce.Do(func() { s.redis, s.redisErr = startRedis() })
	if s.redisErr != nil {
		t.Fatalf("redis-server for the tests: %v", s.redisErr)
	}
	return s.redis
}

// NATSServerBin finds nats-server: $NATS_SERVER_BIN, else the cache
// hack/nats.sh builds into ($KUBETX_TESTENV_CACHE, default
// $XDG_CACHE_HOME/kubetx/testenv or ~/.cache/kubetx/testenv, then
// nats-server-<NATS_SERVER_VERSION>/bin), else PATH.
func NATSServerBin() (string, error) {
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("NATS_SERVER_BIN=%s is not an executable", p)
	}
	version, err := natsVersion()
	if err != nil {
		return "", err
	}
	cache := os.Getenv("KUBETX_TESTENV_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "kubetx", "testenv")
	}
	bin := filepath.Join(cache, "nats-server-"+version, "bin", "nats-server")
	if isExec(bin) {
		return bin, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("nats-server %s not found (%s, $NATS_SERVER_BIN, PATH): build it with `bash hack/nats.sh` "+
		"(or set KUBETX_SKIP_BROKER_TESTS=1 outside CI to skip these tests)", version, bin)
}

// natsVersion reads NATS_SERVER_VERSION from hack/testenv.env, found by
// walking up from the working directory (a package directory of sdk/go).
func natsVersion() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "hack", "testenv.env"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "NATS_SERVER_VERSION="); ok && v != "" {
					return v, nil
				}
			}
			return "", fmt.Errorf("%s: NATS_SERVER_VERSION is not set", f.Name())
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/testenv.env not found above the working directory (it pins NATS_SERVER_VERSION); set NATS_SERVER_BIN")
		}
		dir = parent
	}
}

// RedisServerBin finds redis-server in $REDIS_BIN, /usr/bin, /usr/local/bin or PATH.
func RedisServerBin() (string, error) {
	dirs := []string{os.Getenv("REDIS_BIN"), "/usr/bin", "/usr/local/bin"}
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	for _, d := range dirs {
		if d != "" && isExec(filepath.Join(d, "redis-server")) {
			return filepath.Join(d, "redis-server"), nil
		}
	}
	return "", errors.New("redis-server not found in $REDIS_BIN, /usr/bin, /usr/local/bin or PATH: install it with `bash hack/redis.sh` " +
		"(or set KUBETX_SKIP_BROKER_TESTS=1 outside CI to skip these tests)")
}

func startNATS() (*Server, error) {
	bin, err := NATSServerBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubetx-go-nats-")
	if err != nil {
		return nil, err
	}
	store := filepath.Join(dir, "jetstream")
	conf := filepath.Join(dir, "nats.conf")
	log := filepath.Join(dir, "nats.log")
	var lastErr error
	// Another process may take a port between freePort and the bind: try others then.
	for attempt := 0; attempt < 3; attempt++ {
		port, err1 := freePort()
		monitor, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		config := fmt.Sprintf("server_name: kubetx-go-test\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\njetstream { store_dir: %q }\n", port, monitor, store)
		if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
			return nil, err
		}
		srv, err := start(dir, log, bin, "-c", conf)
		if err != nil {
			lastErr = err
			continue
		}
		srv.URL, srv.Port = fmt.Sprintf("nats://127.0.0.1:%d", port), port
		if err := waitReady(srv, func() bool { return healthy(monitor) }); err != nil {
			srv.kill()
			lastErr = err
			continue
		}
		return srv, nil
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("start nats-server: %w", lastErr)
}

func startRedis() (*Server, error) {
	bin, err := RedisServerBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubetx-go-redis-")
	if err != nil {
		return nil, err
	}
	log := filepath.Join(dir, "redis.log")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		srv, err := start(dir, log, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "")
		if err != nil {
			lastErr = err
			continue
		}
		srv.URL, srv.Port = fmt.Sprintf("redis://127.0.0.1:%d", port), port
		if err := waitReady(srv, func() bool { return pong(port) }); err != nil {
			srv.kill()
			lastErr = err
			continue
		}
		return srv, nil
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("start redis-server: %w", lastErr)
}

// start runs bin in dir with its output appended to log.
func start(dir, log, bin string, args ...string) (*Server, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	// The server dies with this test binary (SIGKILL, a crash), never stays behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	srv := &Server{Dir: dir, log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(srv.done)
	}()
	return srv, nil
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// waitReady polls ready (50 ms doubling to 500 ms) for up to 30 s; it fails
// early when the process exits.
func waitReady(s *Server, ready func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	delay := 50 * time.Millisecond
	for {
		if ready() {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited while starting:\n%s", filepath.Base(s.cmd.Path), tail(s.log))
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s:\n%s", filepath.Base(s.cmd.Path), tail(s.log))
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

func healthy(monitor int) bool {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", monitor))
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// pong is true once the server answers PING with PONG (not -LOADING).
func pong(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
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

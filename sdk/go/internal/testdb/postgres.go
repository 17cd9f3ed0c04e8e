package testdb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// findPostgresBin: $PG_BIN, the newest $PG_LIB_DIR/<v>/bin (default
// /usr/lib/postgresql), else initdb on PATH.
func findPostgresBin() (string, error) {
	var candidates []string
	if d := os.Getenv("PG_BIN"); d != "" {
		candidates = append(candidates, d)
	}
	root := os.Getenv("PG_LIB_DIR")
	if root == "" {
		root = "/usr/lib/postgresql"
	}
	if entries, err := os.ReadDir(root); err == nil {
		var versions []float64
		for _, e := range entries {
			if v, err := strconv.ParseFloat(e.Name(), 64); err == nil {
				versions = append(versions, v)
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(versions)))
		for _, v := range versions {
			candidates = append(candidates, filepath.Join(root, strconv.FormatFloat(v, 'f', -1, 64), "bin"))
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, d := range candidates {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, postgres) not found in $PG_BIN, %s/*/bin or PATH: "+
		"install them with `bash hack/postgres.sh` (as root; Debian: apt-get install -y postgresql) or set PG_BIN "+
		"(or set KUBETX_SKIP_DB_TESTS=1 to skip these tests)", root)
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func startPostgres() (*server, error) {
	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := owner("postgres", "hack/postgres.sh")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("kubetx-go-pg-", cred)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	log := filepath.Join(dir, "server.log")
	initdb := command(cred, dir, filepath.Join(bin, "initdb"), "-D", data, "-U", "kubetx", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := command(cred, dir, filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB")
		// SIGQUIT is PostgreSQL's immediate shutdown; use it if this process dies.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
		done, err := startProcess(cmd, log)
		if err != nil {
			lastErr = err
			continue
		}
		srv := &server{dir: dir, cmd: cmd, done: done, port: port}
		srv.dsn = func(db string) string {
			return fmt.Sprintf("postgres://kubetx@127.0.0.1:%d/%s?sslmode=disable", port, db)
		}
		srv.stopFn = func() { stopProcess(cmd, done, syscall.SIGQUIT) }
		if err := waitReady("pgx", srv.dsn("postgres"), done, log); err != nil {
			srv.stopFn()
			lastErr = err // maybe the port was taken meanwhile: try another
			continue
		}
		return srv, nil
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("start postgres: %w", lastErr)
}

package testdb

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

const mariadbHint = "install them with `bash hack/mariadb.sh` (as root; Debian: apt-get install -y mariadb-server) " +
	"or set MARIADB_BIN (or set KUBETX_SKIP_DB_TESTS=1 to skip these tests)"

// findMariaDB returns the server binary and the install-db script.
func findMariaDB() (server, installDB string, err error) {
	dirs := []string{}
	if d := os.Getenv("MARIADB_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	for _, d := range dirs {
		for _, name := range []string{"mariadbd", "mysqld"} {
			if server == "" && isExec(filepath.Join(d, name)) {
				server = filepath.Join(d, name)
			}
		}
		for _, name := range []string{"mariadb-install-db", "mysql_install_db"} {
			if installDB == "" && isExec(filepath.Join(d, name)) {
				installDB = filepath.Join(d, name)
			}
		}
	}
	if server == "" || installDB == "" {
		return "", "", fmt.Errorf("MariaDB server binaries (mariadbd and mariadb-install-db) not found in $MARIADB_BIN, /usr/sbin, /usr/bin or PATH: %s", mariadbHint)
	}
	return server, installDB, nil
}

func startMariaDB() (*server, error) {
	// The driver logs every refused connection while the server starts.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	bin, installDB, err := findMariaDB()
	if err != nil {
		return nil, err
	}
	cred, err := owner("mysql", "hack/mariadb.sh")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("kubetx-go-my-", cred)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	socket := filepath.Join(dir, "mysqld.sock")
	log := filepath.Join(dir, "server.log")
	// --no-defaults everywhere: never read the system's /etc/mysql config.
	install := command(cred, dir, installDB, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve", "--basedir=/usr")
	if cred == nil {
		install.Args = append(install.Args, "--user="+currentUser())
	}
	if out, err := install.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %v: %s", installDB, err, strings.TrimSpace(string(out)))
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := command(cred, dir, bin, "--no-defaults", "--datadir="+data, "--socket="+socket,
			"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--pid-file="+filepath.Join(dir, "mysqld.pid"),
			"--log-error="+log, "--skip-name-resolve", "--skip-log-bin", "--performance-schema=OFF",
			"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--innodb-buffer-pool-size=64M",
			"--innodb-log-file-size=32M", "--max-connections=400", "--character-set-server=utf8mb4")
		done, err := startProcess(cmd, filepath.Join(dir, "stdout.log"))
		if err != nil {
			lastErr = err
			continue
		}
		srv := &server{dir: dir, cmd: cmd, done: done, port: port, socket: socket}
		// Over the unix socket, as root with an empty password (install-db's "normal" auth).
		srv.dsn = func(db string) string { return fmt.Sprintf("root@unix(%s)/%s", socket, db) }
		srv.stopFn = func() { stopProcess(cmd, done, syscall.SIGTERM) }
		if err := waitReady("mysql", srv.dsn(""), done, log); err != nil {
			srv.stopFn()
			lastErr = err
			continue
		}
		return srv, nil
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("start mariadbd: %w", lastErr)
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Getuid())
}

// Package testdb starts throwaway database servers for the SDK's tests:
// PostgreSQL (initdb + postgres from the Debian binaries, hack/postgres.sh)
// and MariaDB (mariadb-install-db + mariadbd, hack/mariadb.sh), each in a temp
// dir on a free localhost port, fsync off; and SQLite files in t.TempDir().
//
// Servers start lazily, once per test binary, and each test gets a database
// of its own. Missing server binaries fail the test with the script to run;
// KUBETX_SKIP_DB_TESTS=1 skips the PostgreSQL and MariaDB tests instead (CI
// must not set it). As root the servers run as the postgres / mysql users.
// The servers get the parent-death signal, so a killed test binary does not
// leave them running.
package testdb

package io.kubetx.testdb;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.kubetx.barrier.Dialect;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Throwaway PostgreSQL and MariaDB servers for the tests (the Go SDK's internal/testdb, in Java):
 * {@code initdb} + {@code postgres} and {@code mariadb-install-db} + {@code mariadbd} in temp
 * directories on free ports, started once per JVM when a test first asks, each test on a fresh
 * database. Run as root, the servers run as the {@code postgres} / {@code mysql} users
 * ({@code setpriv}). Missing binaries FAIL the tests with the script to run (hack/postgres.sh,
 * hack/mariadb.sh); there is no skip.
 *
 * <p>The servers are started from one long-lived thread with {@code setpriv --pdeathsig}, so they
 * die with the JVM even when it is killed, and a shutdown hook stops them cleanly otherwise.
 */
public final class TestDatabases {
  private TestDatabases() {}

  /** One fresh database: its dialect, a pool on it, and a plain-connection factory. */
  public record Db(Dialect dialect, String name, String jdbcUrl, HikariDataSource pool) implements AutoCloseable {
    public Connection connect() throws SQLException {
      return DriverManager.getConnection(jdbcUrl);
    }

    @Override
    public void close() {
      pool.close();
    }

    @Override
    public String toString() {
      return dialect.toString().toLowerCase();
    }
  }

  private static final AtomicInteger N = new AtomicInteger();
  // Processes started with PR_SET_PDEATHSIG die when the thread that started them ends, so they
  // are started from this one thread, which lives as long as the JVM.
  private static final ExecutorService STARTER = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "kubetx-testdb");
    t.setDaemon(true);
    return t;
  });
  private static Server pg;
  private static Server my;
  private static Throwable pgErr;
  private static Throwable myErr;

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      for (Server s : new Server[] {pg, my}) {
        if (s != null) {
          s.stop();
        }
      }
    }, "kubetx-testdb-stop"));
  }

  /** A fresh database on the shared PostgreSQL test server. */
  public static synchronized Db postgres() throws Exception {
    if (pg == null && pgErr == null) {
      try {
        pg = STARTER.submit(TestDatabases::startPostgres).get();
      } catch (java.util.concurrent.ExecutionException e) {
        pgErr = e.getCause();
      }
    }
    if (pgErr != null) {
      throw new IllegalStateException("PostgreSQL test server: " + pgErr.getMessage(), pgErr);
    }
    String name = "t" + N.incrementAndGet();
    try (Connection c = DriverManager.getConnection(pg.url("postgres")); Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    }
    return new Db(Dialect.POSTGRES, name, pg.url(name), pool(pg.url(name)));
  }

  /** A fresh database on the shared MariaDB test server. */
  public static synchronized Db mariadb() throws Exception {
    if (my == null && myErr == null) {
      try {
        my = STARTER.submit(TestDatabases::startMariaDB).get();
      } catch (java.util.concurrent.ExecutionException e) {
        myErr = e.getCause();
      }
    }
    if (myErr != null) {
      throw new IllegalStateException("MariaDB test server: " + myErr.getMessage(), myErr);
    }
    String name = "t" + N.incrementAndGet();
    try (Connection c = DriverManager.getConnection(my.url("")); Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    }
    return new Db(Dialect.MYSQL, name, my.url(name), pool(my.url(name)));
  }

  /** A fresh database of the dialect. */
  public static Db of(Dialect d) throws Exception {
    return d == Dialect.POSTGRES ? postgres() : mariadb();
  }

  private static HikariDataSource pool(String url) {
    HikariConfig c = new HikariConfig();
    c.setJdbcUrl(url);
    c.setMaximumPoolSize(60);
    c.setMinimumIdle(0);
    c.setConnectionTimeout(20_000);
    return new HikariDataSource(c);
  }

  // --- servers -------------------------------------------------------------------------------

  private record Server(Path dir, Process process, String signal, java.util.function.Function<String, String> urls) {
    String url(String db) {
      return urls.apply(db);
    }

    void stop() {
      if (process.isAlive()) {
        try {
          new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor();
          if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
          }
        } catch (Exception e) {
          process.destroyForcibly();
        }
      }
      removeAll(dir);
    }
  }

  private static boolean root() {
    return "root".equals(System.getProperty("user.name"));
  }

  /** setpriv: die with this JVM; as root, run as {@code user}. */
  private static List<String> as(String user, String deathSignal, String... cmd) {
    List<String> out = new ArrayList<>(List.of("setpriv", "--pdeathsig", deathSignal));
    if (root()) {
      out.addAll(List.of("--reuid=" + user, "--regid=" + user, "--init-groups"));
    }
    out.add("--");
    out.addAll(List.of(cmd));
    return out;
  }

  private static Path tempDir(String prefix, String owner) throws IOException {
    Path dir = Files.createTempDirectory(prefix);
    if (root()) {
      UserPrincipal u;
      try {
        u = dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(owner);
      } catch (IOException e) {
        throw new IOException("running as root, and the server refuses root: a \"" + owner
            + "\" user is needed (its Debian package creates it: bash hack/" + (owner.equals("postgres") ? "postgres" : "mariadb") + ".sh)", e);
      }
      Files.setOwner(dir, u);
    }
    return dir;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static boolean isExec(Path p) {
    return Files.isRegularFile(p) && Files.isExecutable(p);
  }

  private static Path findPostgresBin() {
    List<Path> candidates = new ArrayList<>();
    String env = System.getenv("PG_BIN");
    if (env != null && !env.isEmpty()) {
      candidates.add(Path.of(env));
    }
    Path root = Path.of(System.getenv().getOrDefault("PG_LIB_DIR", "/usr/lib/postgresql"));
    try (Stream<Path> versions = Files.list(root)) {
      versions.filter(p -> p.getFileName().toString().matches("\\d+(\\.\\d+)?"))
          .sorted(Comparator.comparingDouble((Path p) -> Double.parseDouble(p.getFileName().toString())).reversed())
          .forEach(p -> candidates.add(p.resolve("bin")));
    } catch (IOException e) {
      // no such directory: look on PATH
    }
    for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!d.isEmpty()) {
        candidates.add(Path.of(d));
      }
    }
    for (Path d : candidates) {
      if (isExec(d.resolve("initdb")) && isExec(d.resolve("postgres"))) {
        return d;
      }
    }
    throw new IllegalStateException("PostgreSQL server binaries (initdb, postgres) not found in $PG_BIN, " + root
        + "/*/bin or PATH: install them with `bash hack/postgres.sh` (as root; Debian: apt-get install -y postgresql) or set PG_BIN");
  }

  private static Path findOnDirs(String envVar, String... names) {
    List<String> dirs = new ArrayList<>();
    String env = System.getenv(envVar);
    if (env != null && !env.isEmpty()) {
      dirs.add(env);
    }
    dirs.addAll(List.of("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"));
    dirs.addAll(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
    for (String d : dirs) {
      for (String n : names) {
        if (!d.isEmpty() && isExec(Path.of(d, n))) {
          return Path.of(d, n);
        }
      }
    }
    return null;
  }

  private static String run(List<String> cmd, Path dir) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + out.trim());
    }
    return out;
  }

  private static Server startPostgres() throws Exception {
    Path bin = findPostgresBin();
    Path dir = tempDir("kubetx-java-pg-", "postgres");
    Path data = dir.resolve("data");
    Path log = dir.resolve("server.log");
    try {
      run(as("postgres", "KILL", bin.resolve("initdb").toString(), "-D", data.toString(), "-U", "kubetx", "--auth=trust",
          "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"), dir);
    } catch (Exception e) {
      removeAll(dir);
      throw e;
    }
    Exception last = null;
    for (int attempt = 0; attempt < 3; attempt++) {
      int port = freePort();
      // SIGQUIT is PostgreSQL's immediate shutdown; the server gets it if this JVM dies.
      Process p = new ProcessBuilder(as("postgres", "QUIT", bin.resolve("postgres").toString(), "-D", data.toString(),
          "-p", Integer.toString(port), "-k", dir.toString(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
          "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB"))
          .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
      Server s = new Server(dir, p, "QUIT", db -> "jdbc:postgresql://127.0.0.1:" + port + "/" + db + "?user=kubetx");
      try {
        waitReady(s.url("postgres"), p, log);
        return s;
      } catch (Exception e) {
        last = e;
        if (p.isAlive()) {
          p.destroyForcibly().waitFor();
        }
      }
    }
    removeAll(dir);
    throw new IllegalStateException("start postgres: " + last.getMessage(), last);
  }

  private static Server startMariaDB() throws Exception {
    Path server = findOnDirs("MARIADB_BIN", "mariadbd", "mysqld");
    Path installDb = findOnDirs("MARIADB_BIN", "mariadb-install-db", "mysql_install_db");
    if (server == null || installDb == null) {
      throw new IllegalStateException("MariaDB server binaries (mariadbd and mariadb-install-db) not found in $MARIADB_BIN, /usr/sbin, /usr/bin or PATH: "
          + "install them with `bash hack/mariadb.sh` (as root; Debian: apt-get install -y mariadb-server) or set MARIADB_BIN");
    }
    Path dir = tempDir("kubetx-java-my-", "mysql");
    Path data = dir.resolve("data");
    Path socket = dir.resolve("mysqld.sock");
    Path log = dir.resolve("server.log");
    // A user for TCP connections (install-db's root is root@localhost over the socket only).
    Path init = dir.resolve("init.sql");
    Files.writeString(init, "CREATE USER IF NOT EXISTS 'kubetx'@'%';\nGRANT ALL PRIVILEGES ON *.* TO 'kubetx'@'%';\n");
    List<String> install = new ArrayList<>(as("mysql", "KILL", installDb.toString(), "--no-defaults", "--datadir=" + data,
        "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", "--basedir=/usr"));
    if (!root()) {
      install.add("--user=" + System.getProperty("user.name"));
    }
    try {
      run(install, dir);
    } catch (Exception e) {
      removeAll(dir);
      throw e;
    }
    Exception last = null;
    for (int attempt = 0; attempt < 3; attempt++) {
      int port = freePort();
      Process p = new ProcessBuilder(as("mysql", "KILL", server.toString(), "--no-defaults", "--datadir=" + data, "--socket=" + socket,
          "--port=" + port, "--bind-address=127.0.0.1", "--pid-file=" + dir.resolve("mysqld.pid"), "--log-error=" + log,
          "--skip-name-resolve", "--skip-log-bin", "--performance-schema=OFF", "--innodb-flush-log-at-trx-commit=0",
          "--innodb-doublewrite=0", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M", "--max-connections=400",
          "--character-set-server=utf8mb4", "--init-file=" + init))
          .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("stdout.log").toFile())).start();
      Server s = new Server(dir, p, "TERM", db -> "jdbc:mariadb://127.0.0.1:" + port + "/" + db + "?user=kubetx");
      try {
        waitReady(s.url(""), p, log);
        return s;
      } catch (Exception e) {
        last = e;
        if (p.isAlive()) {
          p.destroyForcibly().waitFor();
        }
      }
    }
    removeAll(dir);
    throw new IllegalStateException("start mariadbd: " + last.getMessage(), last);
  }

  private static void waitReady(String url, Process p, Path log) throws Exception {
    long deadline = System.nanoTime() + 60_000_000_000L;
    SQLException last = null;
    while (System.nanoTime() < deadline) {
      try (Connection c = DriverManager.getConnection(url)) {
        return;
      } catch (SQLException e) {
        last = e;
      }
      if (!p.isAlive()) {
        throw new IllegalStateException("server exited while starting:\n" + tail(log));
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException("server not ready after 60s: " + last + "\n" + tail(log));
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    } catch (IOException e) {
      return "(no server log)";
    }
  }

  private static void removeAll(Path dir) {
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // already gone
    }
  }

}

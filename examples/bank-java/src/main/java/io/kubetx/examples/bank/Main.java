package io.kubetx.examples.bank;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.kubetx.barrier.Barrier;
import io.kubetx.barrier.Dialect;
import io.kubetx.participant.ParticipantServer;
import io.kubetx.participant.SagaHandler;
import io.kubetx.participant.TccHandler;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * bank-java: the kubetx example participant in Java. One bank, whose accounts live in PostgreSQL,
 * serving the classic transfer's two halves (TransOut, TransIn) as TCC and as Saga through the
 * Java SDK's barrier. Two processes (two banks) and one DistributedTransaction make a transfer;
 * see README.md. The same flags (and KUBETX_BANK_* variables) as examples/bank-go.
 */
public final class Main {
  private Main() {}

  /** The kit names its operation "conformance"; its semantics are TransOut's (hook.proto). */
  static final String CONFORMANCE_OPERATION = "conformance";

  record Config(String bank, String listen, String databaseUrl, boolean conformanceHook, double faultRate, long faultSeed,
      int maxConns, Duration shutdownGrace) {}

  private static String env(String name, String def) {
    String v = System.getenv("KUBETX_BANK_" + name);
    return v == null ? def : v;
  }

  static final String USAGE = """
      usage: java -jar bank-java.jar --bank NAME --database-url URL [flags]
        --bank NAME              name of this bank, shown in messages and logs (env KUBETX_BANK_NAME)
        --listen ADDR            gRPC listen address host:port; port 0 picks a free one (logged as "bank listening") (env KUBETX_BANK_LISTEN, default :50051)
        --database-url URL       PostgreSQL: jdbc:postgresql://host:5432/bank?user=bank or postgres://user@host:5432/bank?sslmode=disable (env KUBETX_BANK_DATABASE_URL)
        --conformance-hook       also serve kubetx.conformance.v1.ConformanceHook, and take operation "conformance" as TransOut (tests only: it opens accounts) (env KUBETX_BANK_CONFORMANCE_HOOK)
        --fault-rate F           tests only: fraction of calls answered UNAVAILABLE, half before and half after committing (env KUBETX_BANK_FAULT_RATE)
        --fault-seed N           seed of the fault draws; 0 = from the clock (env KUBETX_BANK_FAULT_SEED)
        --max-conns N            database connections at most (default 20)
        --shutdown-grace D       how long in-flight calls may finish after SIGTERM, e.g. 10s, 500ms (default 10s)
      """;

  static Config parse(String[] args) {
    String bank = env("NAME", "");
    String listen = env("LISTEN", ":50051");
    String url = env("DATABASE_URL", "");
    boolean hook = Boolean.parseBoolean(env("CONFORMANCE_HOOK", "false")) || env("CONFORMANCE_HOOK", "").equals("1");
    double rate = Double.parseDouble(env("FAULT_RATE", "0"));
    long seed = Long.parseLong(env("FAULT_SEED", "0"));
    int maxConns = 20;
    Duration grace = Duration.ofSeconds(10);
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      String value = null;
      int eq = a.indexOf('=');
      if (a.startsWith("--") && eq > 0) {
        value = a.substring(eq + 1);
        a = a.substring(0, eq);
      }
      switch (a) {
        case "--conformance-hook" -> hook = value == null || Boolean.parseBoolean(value);
        case "-h", "--help" -> throw new UsageException(null);
        default -> {
          if (value == null) {
            if (i + 1 >= args.length) {
              throw new UsageException("flag needs an argument: " + a);
            }
            value = args[++i];
          }
          switch (a) {
            case "--bank" -> bank = value;
            case "--listen" -> listen = value;
            case "--database-url" -> url = value;
            case "--fault-rate" -> rate = Double.parseDouble(value);
            case "--fault-seed" -> seed = Long.parseLong(value);
            case "--max-conns" -> maxConns = Integer.parseInt(value);
            case "--shutdown-grace" -> grace = duration(value);
            default -> throw new UsageException("flag provided but not defined: " + a);
          }
        }
      }
    }
    if (bank.isEmpty()) {
      throw new UsageException("--bank is required");
    }
    if (url.isEmpty()) {
      throw new UsageException("--database-url is required");
    }
    if (rate < 0 || rate > 1) {
      throw new UsageException("--fault-rate must be between 0 and 1, got " + rate);
    }
    if (seed == 0) {
      seed = System.nanoTime();
    }
    return new Config(bank, listen, url, hook, rate, seed, maxConns, grace);
  }

  /** Go-style durations: 10s, 500ms, 1m, 1m30s. */
  static Duration duration(String s) {
    var m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)").matcher(s);
    Duration d = Duration.ZERO;
    int end = 0;
    while (m.find() && m.start() == end) {
      double n = Double.parseDouble(m.group(1));
      long unitMs = switch (m.group(2)) {
        case "ms" -> 1;
        case "s" -> 1000;
        case "m" -> 60_000;
        default -> 3_600_000;
      };
      d = d.plusMillis(Math.round(n * unitMs));
      end = m.end();
    }
    if (end != s.length() || s.isEmpty()) {
      throw new UsageException("invalid duration " + s);
    }
    return d;
  }

  static final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
      super(message);
    }
  }

  public static void main(String[] args) {
    Config cfg;
    try {
      cfg = parse(args);
    } catch (UsageException e) {
      if (e.getMessage() == null) {
        System.out.print(USAGE);
        return;
      }
      System.err.println("bank-java: " + e.getMessage());
      System.err.print(USAGE);
      System.exit(2);
      return;
    } catch (RuntimeException e) {
      System.err.println("bank-java: " + e.getMessage());
      System.exit(2);
      return;
    }
    Log log = new Log(cfg.bank());
    log.captureJul();
    try {
      run(cfg, log);
    } catch (Exception e) {
      log.error("bank stopped", Map.of("err", String.valueOf(e)));
      System.exit(1);
    }
  }

  static void run(Config cfg, Log log) throws Exception {
    DatabaseUrl url = DatabaseUrl.parse(cfg.databaseUrl());
    HikariConfig hc = new HikariConfig();
    hc.setJdbcUrl(url.jdbcUrl());
    url.properties().forEach((k, v) -> hc.addDataSourceProperty((String) k, v));
    hc.setMaximumPoolSize(cfg.maxConns());
    hc.setPoolName("bank-" + cfg.bank());
    try (HikariDataSource ds = new HikariDataSource(hc)) {
      Bank.migrate(ds);
      Barrier barrier = Barrier.builder(ds).dialect(Dialect.POSTGRES).build();
      Bank bank = new Bank(cfg.bank(), cfg.conformanceHook() ? Map.of(CONFORMANCE_OPERATION, Bank.TRANS_OUT) : Map.of());
      TccHandler tcc = barrier.tcc(bank);
      SagaHandler saga = barrier.saga(bank);
      if (cfg.faultRate() > 0) {
        Faults f = new Faults(cfg.faultRate(), cfg.faultSeed(), log);
        tcc = f.tcc(tcc);
        saga = f.saga(saga);
        log.warn("fault injection on", Map.of("rate", cfg.faultRate(), "seed", cfg.faultSeed()));
      }
      ParticipantServer.Builder b = ParticipantServer.builder().address(cfg.listen()).tcc(tcc).saga(saga).shutdownGrace(cfg.shutdownGrace());
      if (cfg.conformanceHook()) {
        b.addService(new Hook(ds));
        log.warn("serving the conformance hook: anyone reaching this port can open accounts", null);
      }
      Map<String, Object> starting = new LinkedHashMap<>();
      starting.put("listen", cfg.listen());
      starting.put("conformanceHook", cfg.conformanceHook());
      log.info("bank starting", starting);
      ParticipantServer server = b.build().start();
      String host = cfg.listen().substring(0, cfg.listen().lastIndexOf(':'));
      log.info("bank listening", Map.of("address", (host.isEmpty() ? "0.0.0.0" : host) + ":" + server.port()));
      // SIGTERM/SIGINT: drain within the grace, then the pool closes and main returns.
      java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        server.shutdown();
        try {
          closed.await(5, java.util.concurrent.TimeUnit.SECONDS); // let main close the pool and log
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }, "bank-shutdown"));
      try {
        server.awaitTermination();
      } finally {
        ds.close();
        log.info("bank stopped", null);
        closed.countDown();
      }
    }
  }
}

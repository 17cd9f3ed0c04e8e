// Command bank-go is the kubetx example participant in Go: one bank, whose
// accounts live in PostgreSQL, serving the classic transfer's two halves
// (TransOut, TransIn) as TCC and as Saga through the Go SDK's barrier. Two
// processes (two banks) and one DistributedTransaction make a transfer; see
// README.md for the semantics and manifests/ for the transactions.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/kubetx/kubetx/sdk/go/barrier"
	conformancev1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/conformance/v1"
	"github.com/kubetx/kubetx/sdk/go/participant"
	"google.golang.org/grpc"
)

type config struct {
	bank            string
	listen          string
	databaseURL     string
	conformanceHook bool
	faultRate       float64
	faultSeed       uint64
	maxConns        int
	shutdownGrace   time.Duration
}

// envOr lets every flag be set from the environment too (KUBETX_BANK_<NAME>).
func envOr(name, def string) string {
	if v, ok := os.LookupEnv("KUBETX_BANK_" + name); ok {
		return v
	}
	return def
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bank-go", flag.ContinueOnError)
	fs.StringVar(&c.bank, "bank", envOr("NAME", ""), "name of this bank, shown in messages and logs (env KUBETX_BANK_NAME)")
	fs.StringVar(&c.listen, "listen", envOr("LISTEN", ":50051"), "gRPC listen address; port 0 picks a free one (logged as \"bank listening\") (env KUBETX_BANK_LISTEN)")
	fs.StringVar(&c.databaseURL, "database-url", envOr("DATABASE_URL", ""), "PostgreSQL URL, e.g. postgres://user@host:5432/bank (env KUBETX_BANK_DATABASE_URL)")
	hookDefault, _ := strconv.ParseBool(envOr("CONFORMANCE_HOOK", "false"))
	fs.BoolVar(&c.conformanceHook, "conformance-hook", hookDefault, "also serve kubetx.conformance.v1.ConformanceHook, and take operation \"conformance\" as TransOut (tests only: it opens accounts) (env KUBETX_BANK_CONFORMANCE_HOOK)")
	rate, _ := strconv.ParseFloat(envOr("FAULT_RATE", "0"), 64)
	fs.Float64Var(&c.faultRate, "fault-rate", rate, "tests only: fraction of calls answered UNAVAILABLE, half before and half after committing (env KUBETX_BANK_FAULT_RATE)")
	seed, _ := strconv.ParseUint(envOr("FAULT_SEED", "0"), 10, 64)
	fs.Uint64Var(&c.faultSeed, "fault-seed", seed, "seed of the fault draws; 0 = from the clock (env KUBETX_BANK_FAULT_SEED)")
	fs.IntVar(&c.maxConns, "max-conns", 20, "database connections at most")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 10*time.Second, "how long in-flight calls may finish after SIGTERM")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.bank == "":
		return c, errors.New("--bank is required")
	case c.databaseURL == "":
		return c, errors.New("--database-url is required")
	case c.faultRate < 0 || c.faultRate > 1:
		return c, fmt.Errorf("--fault-rate must be between 0 and 1, got %g", c.faultRate)
	}
	if c.faultSeed == 0 {
		c.faultSeed = uint64(time.Now().UnixNano())
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bank-go:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("bank", cfg.bank)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("bank stopped", "err", err)
		os.Exit(1)
	}
	log.Info("bank stopped")
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	db, err := sql.Open("pgx", cfg.databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)

	if err := migrate(ctx, db); err != nil {
		return err
	}
	b, err := barrier.New(ctx, db, barrier.Postgres)
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	bank := &Bank{Name: cfg.bank}
	if cfg.conformanceHook {
		// The kit names its operation "conformance"; its semantics are TransOut's (hook.proto).
		bank.Aliases = map[string]string{conformanceOperation: OpTransOut}
	}
	tcc, saga := barrier.TCC(b, bank), barrier.Saga(b, bank)
	if cfg.faultRate > 0 {
		f := newFaults(cfg.faultRate, cfg.faultSeed, log)
		tcc, saga = faultyTCC{f: f, inner: tcc}, faultySaga{f: f, inner: saga}
		log.Warn("fault injection on", "rate", cfg.faultRate, "seed", cfg.faultSeed)
	}
	opts := participant.Options{
		Address:       cfg.listen,
		TCC:           tcc,
		Saga:          saga,
		Logger:        log,
		ShutdownGrace: cfg.shutdownGrace,
		OnListening:   func(a net.Addr) { log.Info("bank listening", "address", a.String()) },
	}
	if cfg.conformanceHook {
		opts.Register = func(s *grpc.Server) { conformancev1.RegisterConformanceHookServer(s, &hook{db: db}) }
		log.Warn("serving the conformance hook: anyone reaching this port can open accounts")
	}
	log.Info("bank starting", "listen", cfg.listen, "conformanceHook", cfg.conformanceHook)
	return participant.Serve(ctx, opts)
}

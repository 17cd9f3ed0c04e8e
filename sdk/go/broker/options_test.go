package broker_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/broker"
)

func TestSubscribeRejectsInvalidOptions(t *testing.T) {
	b, err := barrier.New(context.Background(), dbs.SQLite(t), barrier.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	h := func(context.Context, *sql.Tx, *broker.Message) error { return nil }
	nats := func(edit func(*broker.NATSOptions)) *broker.NATSOptions {
		o := &broker.NATSOptions{URL: "nats://127.0.0.1:1", Stream: "S", Durable: "d", Subject: "s.x"}
		edit(o)
		return o
	}
	redis := func(edit func(*broker.RedisOptions)) *broker.RedisOptions {
		o := &broker.RedisOptions{URL: "redis://127.0.0.1:1", Subject: "s.x", Group: "g", Consumer: "c"}
		edit(o)
		return o
	}
	tests := []struct {
		name string
		opts broker.Options
		want string
	}{
		{"no path", broker.Options{Barrier: b, Handler: h}, "give Options.NATS, Options.Redis or both"},
		{"no barrier", broker.Options{NATS: nats(func(*broker.NATSOptions) {}), Handler: h}, "Barrier and Options.Handler are required"},
		{"no handler", broker.Options{NATS: nats(func(*broker.NATSOptions) {}), Barrier: b}, "Barrier and Options.Handler are required"},
		{"negative concurrency", broker.Options{NATS: nats(func(*broker.NATSOptions) {}), Barrier: b, Handler: h, Concurrency: -1}, "Concurrency must be positive"},
		{"no stream", broker.Options{NATS: nats(func(o *broker.NATSOptions) { o.Stream = "" }), Barrier: b, Handler: h}, "NATS.Stream and NATS.Durable are required"},
		{"no NATS server", broker.Options{NATS: nats(func(o *broker.NATSOptions) { o.URL = "" }), Barrier: b, Handler: h}, "one of NATS.URL and NATS.Conn"},
		{"short expires", broker.Options{NATS: nats(func(o *broker.NATSOptions) { o.Expires = 10 * time.Millisecond }), Barrier: b, Handler: h}, "at least 1s"},
		{"no Redis subject", broker.Options{Redis: redis(func(o *broker.RedisOptions) { o.Subject = "" }), Barrier: b, Handler: h}, "give Redis.Subject (or NATS.Subject)"},
		{"wildcard", broker.Options{Redis: redis(func(o *broker.RedisOptions) { o.Subject = "s.>" }), Barrier: b, Handler: h}, "without wildcards"},
		{"no group", broker.Options{Redis: redis(func(o *broker.RedisOptions) { o.Group = "" }), Barrier: b, Handler: h}, "Redis.Group and Redis.Consumer are required"},
		{"bad URL", broker.Options{Redis: redis(func(o *broker.RedisOptions) { o.URL = "http://x" }), Barrier: b, Handler: h}, "Redis.URL"},
		{"negative shards", broker.Options{Redis: redis(func(o *broker.RedisOptions) { o.Shards = -2 }), Barrier: b, Handler: h}, "Redis.Shards must be positive"},
		{"negative claim idle", broker.Options{Redis: redis(func(o *broker.RedisOptions) { o.ClaimIdle = -time.Second }), Barrier: b, Handler: h}, "negative Redis.ClaimIdle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := broker.Subscribe(context.Background(), tt.opts)
			if err == nil {
				sub.Stop()
				t.Fatalf("Subscribe accepted the options, want an error with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

package broker_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/broker"
	"github.com/kubetx/kubetx/sdk/go/internal/testbroker"
	"github.com/kubetx/kubetx/sdk/go/internal/testdb"
)

// The tests run Subscribe against a real nats-server (JetStream) and a real
// redis-server (internal/testbroker), with a SQLite barrier and ledger in a
// temporary file. They publish in kubetx's wire format themselves (headers
// Nats-Msg-Id, Kubetx-Key, Kubetx-Transaction; XADD to
// kubetx:<subject>:<FNV-1a-64(key) mod 128> with fields id, key,
// transaction, data), and check the consumer's own ledger (one row per
// handler run that committed) and the brokers' pending counts, polled with
// deadlines.

var (
	dbs      *testdb.Servers
	brokers  *testbroker.Servers
	fixtures atomic.Int64
)

func TestMain(m *testing.M) {
	dbs, brokers = testdb.New(), testbroker.New()
	code := m.Run()
	brokers.Close()
	dbs.Close()
	os.Exit(code)
}

const shards = broker.DefaultShards

// msg is one test message; its payload is {"n": n, "key": key}.
type msg struct {
	id, key string
	n       int
}

// messages: count messages over keys keys, interleaved (key 0..keys-1 with n = 0, then n = 1, …).
func messages(tag string, count, keys int) []msg {
	out := make([]msg, count)
	for i := range out {
		out[i] = msg{id: fmt.Sprintf("uid-%s-%d/deliver", tag, i), key: fmt.Sprintf("%s-key-%d", tag, i%keys), n: i / keys}
	}
	return out
}

func (m msg) data() []byte {
	b, _ := json.Marshal(map[string]any{"n": m.n, "key": m.key})
	return b
}

func (m msg) transaction() string { return "shop/order-" + strings.SplitN(m.id, "/", 2)[0] }

// fixture is one test's stream, subject, group, ledger and barrier on the shared servers.
type fixture struct {
	t        *testing.T
	name     string // the durable and the group too
	subject  string
	stream   string
	natsURL  string
	redisURL string
	nc       *nats.Conn
	js       jetstream.JetStream
	rdb      *redis.Client
	db       *sql.DB
	b        *barrier.Barrier
	ctx      context.Context
}

func newFixture(t *testing.T, name string) *fixture {
	t.Helper()
	// Names of their own on every run (go test -count=N reuses the servers):
	// JetStream deduplicates ids per stream, and the Redis streams are per subject.
	name = fmt.Sprintf("%s%d", name, fixtures.Add(1))
	f := &fixture{t: t, name: name, subject: "t." + name, stream: "T_" + strings.ToUpper(name), ctx: context.Background()}
	f.natsURL = brokers.NATS(t).URL
	f.redisURL = brokers.Redis(t).URL
	nc, err := nats.Connect(f.natsURL)
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	f.nc = nc
	if f.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.CreateStream(f.ctx, jetstream.StreamConfig{Name: f.stream, Subjects: []string{f.subject},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatalf("create stream %s: %v", f.stream, err)
	}
	f.rdb = redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(f.redisURL, "redis://")})
	t.Cleanup(func() { _ = f.rdb.Close() })
	f.db = dbs.SQLite(t)
	if _, err := f.db.Exec(`CREATE TABLE applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,
		key TEXT NOT NULL, n INTEGER NOT NULL, path TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if f.b, err = barrier.New(f.ctx, f.db, barrier.SQLite); err != nil {
		t.Fatal(err)
	}
	return f
}

func logger() *slog.Logger {
	if os.Getenv("KUBETX_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (f *fixture) natsOpts(edit ...func(*broker.NATSOptions)) *broker.NATSOptions {
	o := &broker.NATSOptions{URL: f.natsURL, Stream: f.stream, Durable: f.name, Subject: f.subject}
	for _, e := range edit {
		e(o)
	}
	return o
}

func (f *fixture) redisOpts(edit ...func(*broker.RedisOptions)) *broker.RedisOptions {
	o := &broker.RedisOptions{URL: f.redisURL, Subject: f.subject, Group: f.name, Consumer: "c1"}
	for _, e := range edit {
		e(o)
	}
	return o
}

// start subscribes with the fixture's barrier and the recording handler
// unless opts says otherwise; the subscription is stopped when the test ends.
func (f *fixture) start(opts broker.Options) *broker.Subscription {
	f.t.Helper()
	if opts.Barrier == nil {
		opts.Barrier = f.b
	}
	if opts.Handler == nil {
		opts.Handler = record
	}
	if opts.Logger == nil {
		opts.Logger = logger()
	}
	sub, err := broker.Subscribe(context.Background(), opts)
	if err != nil {
		f.t.Fatalf("Subscribe: %v", err)
	}
	f.t.Cleanup(sub.Stop)
	return sub
}

func waitReady(t *testing.T, sub *broker.Subscription) {
	t.Helper()
	select {
	case <-sub.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("subscription not ready after 20s")
	}
}

// record is the handler most tests use: one ledger row per application.
func record(ctx context.Context, tx *sql.Tx, m *broker.Message) error {
	var p struct{ N int }
	if err := m.Decode(&p); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO applied (id, key, n, path) VALUES (?, ?, ?, ?)`, m.ID, m.Key, p.N, string(m.Path))
	return err
}

func (f *fixture) publishNATS(m msg) {
	f.t.Helper()
	nm := nats.NewMsg(f.subject)
	nm.Header.Set(broker.HeaderMsgID, m.id)
	nm.Header.Set(broker.HeaderKey, m.key)
	nm.Header.Set(broker.HeaderTransaction, m.transaction())
	nm.Data = m.data()
	f.publishRaw(nm)
}

func (f *fixture) publishRaw(nm *nats.Msg) {
	f.t.Helper()
	ack, err := f.js.PublishMsg(f.ctx, nm)
	if err != nil {
		f.t.Fatalf("publish to %s: %v", nm.Subject, err)
	}
	if ack.Duplicate {
		f.t.Fatalf("publish %s: JetStream took it for a duplicate", nm.Header.Get(broker.HeaderMsgID))
	}
}

// publishRedis XADDs m as the operator does on failover.
func (f *fixture) publishRedis(m msg) {
	f.t.Helper()
	f.xadd(broker.Shard(m.key, shards), broker.FieldID, m.id, broker.FieldKey, m.key,
		broker.FieldTransaction, m.transaction(), broker.FieldData, string(m.data()))
}

func (f *fixture) xadd(shard int, fields ...string) {
	f.t.Helper()
	key := broker.StreamKey(broker.DefaultPrefix, f.subject, shard)
	if err := f.rdb.XAdd(f.ctx, &redis.XAddArgs{Stream: key, Values: fields}).Err(); err != nil {
		f.t.Fatalf("XADD %s: %v", key, err)
	}
}

// applied is how many times each id was applied.
func (f *fixture) applied() map[string]int {
	f.t.Helper()
	rows, err := f.db.Query(`SELECT id, COUNT(*) FROM applied GROUP BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			f.t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// natsPending is the durable's (pending, ack pending).
func (f *fixture) natsPending() (uint64, int) {
	f.t.Helper()
	c, err := f.js.Consumer(f.ctx, f.stream, f.name)
	if err != nil {
		f.t.Fatalf("consumer %s: %v", f.name, err)
	}
	info, err := c.Info(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return info.NumPending, info.NumAckPending
}

// expectNothingPending fails the test when the durable or the group still holds a message.
func (f *fixture) expectNothingPending() {
	f.t.Helper()
	if p, ap := f.natsPending(); p != 0 || ap != 0 {
		f.t.Errorf("JetStream pending %d, ack pending %d", p, ap)
	}
	if n := f.redisPending(); n != 0 {
		f.t.Errorf("Redis pending %d", n)
	}
}

// redisPending is the number of entries delivered to the group and not acked, over all shards.
func (f *fixture) redisPending() int64 {
	f.t.Helper()
	cmds, err := f.rdb.Pipelined(f.ctx, func(p redis.Pipeliner) error {
		for i := 0; i < shards; i++ {
			p.XPending(f.ctx, broker.StreamKey(broker.DefaultPrefix, f.subject, i), f.name)
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("XPENDING: %v", err)
	}
	var total int64
	for _, c := range cmds {
		total += c.(*redis.XPendingCmd).Val().Count
	}
	return total
}

// waitFor polls cond every 20 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

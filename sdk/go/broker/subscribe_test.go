package broker_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/broker"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

func TestEachMessageAppliedOnceOnBothPaths(t *testing.T) {
	f := newFixture(t, "once")
	onNATS := messages("once-nats", 100, 100)
	onRedis := messages("once-redis", 100, 100)
	// Half before the consumer first starts (its durable and groups do not exist yet), half after.
	for _, m := range onRedis[:50] {
		f.publishRedis(m)
	}
	sub := f.start(broker.Options{NATS: f.natsOpts(), Redis: f.redisOpts()})
	waitReady(t, sub)
	for _, m := range onNATS {
		f.publishNATS(m)
	}
	for _, m := range onRedis[50:] {
		f.publishRedis(m)
	}

	waitFor(t, "200 acks", 30*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Acked == 100 && c.Redis.Acked == 100
	})
	applied := f.applied()
	if len(applied) != 200 {
		t.Fatalf("%d ids applied, want 200", len(applied))
	}
	for _, m := range append(onNATS, onRedis...) {
		if applied[m.id] != 1 {
			t.Errorf("%s applied %d times", m.id, applied[m.id])
		}
	}
	want := broker.PathCounters{Received: 100, Applied: 100, Acked: 100}
	if c := sub.Counters(); c.NATS != want || c.Redis != want {
		t.Errorf("counters %+v, want %+v on both paths", c, want)
	}
	// The Redis messages were spread over many shard streams, and all of them were read.
	used := map[int]bool{}
	for _, m := range onRedis {
		used[broker.Shard(m.key, shards)] = true
	}
	if len(used) < 50 {
		t.Errorf("only %d shards used", len(used))
	}
	f.expectNothingPending()
}

func TestSameIDOnBothPathsAndGRPCAppliedOnce(t *testing.T) {
	f := newFixture(t, "both")
	ids := messages("both", 10, 10)
	for _, m := range ids {
		f.publishNATS(m)
		f.publishRedis(m) // the republish after a switch to the fallback
	}
	// A gRPC Deliver of another branch got there first: the same barrier row.
	viaGRPC := messages("both-grpc", 1, 1)[0]
	uid, branch, _ := strings.Cut(viaGRPC.id, "/")
	if _, _, err := f.b.Run(f.ctx, barrier.Deliver, &participant.Request{TransactionUID: uid, Branch: branch},
		func(ctx context.Context, tx *sql.Tx, _ *participant.Request) (*participant.Response, error) {
			_, err := tx.ExecContext(ctx, `INSERT INTO applied (id, key, n, path) VALUES (?, ?, 0, 'grpc')`, viaGRPC.id, viaGRPC.key)
			return nil, err
		}); err != nil {
		t.Fatal(err)
	}
	f.publishNATS(viaGRPC)

	sub := f.start(broker.Options{NATS: f.natsOpts(), Redis: f.redisOpts()})
	waitFor(t, "21 acks", 20*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Acked+c.Redis.Acked == 21
	})
	c := sub.Counters()
	if a, d := c.NATS.Applied+c.Redis.Applied, c.NATS.Duplicates+c.Redis.Duplicates; a != 10 || d != 11 {
		t.Errorf("applied %d, duplicates %d; want 10 and 11 (%+v)", a, d, c)
	}
	applied := f.applied()
	for _, m := range append(ids, viaGRPC) {
		if applied[m.id] != 1 {
			t.Errorf("%s applied %d times", m.id, applied[m.id])
		}
	}
	f.expectNothingPending()
}

// crashAfterCommit runs a subscriber that "crashes" right after its local
// commit: AfterCommit closes the connection the subscriber reads through
// (so neither the ack nor a NAK can go out) and returns an error. The
// subscriber is then stopped. It returns once the commit happened.
func crashAfterCommit(t *testing.T, f *fixture, opts broker.Options, closeConn func()) {
	t.Helper()
	crashed := make(chan struct{})
	var once sync.Once
	opts.AfterCommit = func(context.Context, *broker.Message, barrier.Outcome) error {
		once.Do(func() {
			closeConn()
			close(crashed)
		})
		return errors.New("crashed between the commit and the ack")
	}
	opts.Barrier, opts.Handler, opts.Logger = f.b, record, logger()
	sub, err := broker.Subscribe(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-crashed:
	case <-time.After(20 * time.Second):
		sub.Stop()
		t.Fatal("the crashing subscriber never committed")
	}
	sub.Stop()
	if c := sub.Counters(); c.NATS.Acked+c.Redis.Acked != 0 {
		t.Fatalf("the crashed subscriber acked: %+v", c)
	}
}

func TestCrashBetweenCommitAndAckRedeliveredAppliedOnce(t *testing.T) {
	f := newFixture(t, "crash")
	all := messages("crash", 3, 3)
	viaNATS, viaRedis, viaRedisAgain := all[0], all[1], all[2]
	f.publishNATS(viaNATS)
	f.publishRedis(viaRedis)

	// One crashing subscriber per path, so each crash is right after that path's commit.
	nc, err := nats.Connect(f.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	crashAfterCommit(t, f, broker.Options{NATS: f.natsOpts(func(o *broker.NATSOptions) {
		o.URL, o.Conn, o.AckWait = "", nc, time.Second
	})}, nc.Close)
	rc := redis.NewClient(&redis.Options{Addr: f.rdb.Options().Addr})
	crashAfterCommit(t, f, broker.Options{Redis: f.redisOpts(func(o *broker.RedisOptions) {
		o.URL, o.Client, o.Consumer = "", rc, "crashed"
	})}, func() { _ = rc.Close() })
	if got, want := f.applied(), map[string]int{viaNATS.id: 1, viaRedis.id: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if _, ap := f.natsPending(); ap != 1 {
		t.Fatalf("JetStream ack pending %d, want 1", ap)
	}
	if n := f.redisPending(); n != 1 {
		t.Fatalf("Redis pending %d, want 1", n)
	}

	// A new subscriber (on Redis under another name: it claims the dead one's entry).
	var calls atomic.Int64
	sub := f.start(broker.Options{
		NATS:  f.natsOpts(),
		Redis: f.redisOpts(func(o *broker.RedisOptions) { o.Consumer, o.ClaimIdle = "survivor", 300*time.Millisecond }),
		Handler: func(ctx context.Context, tx *sql.Tx, m *broker.Message) error {
			calls.Add(1)
			return record(ctx, tx, m)
		},
	})
	waitFor(t, "both redelivered and acked", 20*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Acked == 1 && c.Redis.Acked == 1
	})
	if n := calls.Load(); n != 0 {
		t.Errorf("the handler ran %d times for messages already applied", n)
	}
	want := broker.PathCounters{Received: 1, Duplicates: 1, Acked: 1}
	if c := sub.Counters(); c.NATS != want || c.Redis != want {
		t.Errorf("counters %+v, want %+v on both paths", c, want)
	}
	f.expectNothingPending()
	sub.Stop()

	// A restart under the same consumer name reads its own pending entry
	// first, long before any claim would.
	f.publishRedis(viaRedisAgain)
	rc2 := redis.NewClient(&redis.Options{Addr: f.rdb.Options().Addr})
	crashAfterCommit(t, f, broker.Options{Redis: f.redisOpts(func(o *broker.RedisOptions) {
		o.URL, o.Client, o.Consumer = "", rc2, "restarts"
	})}, func() { _ = rc2.Close() })
	again := f.start(broker.Options{Redis: f.redisOpts(func(o *broker.RedisOptions) { o.Consumer, o.ClaimIdle = "restarts", time.Hour })})
	waitFor(t, "the pending entry read again and acked", 10*time.Second, func() bool { return again.Counters().Redis.Acked == 1 })
	if c := again.Counters().Redis; c != (broker.PathCounters{Received: 1, Duplicates: 1, Acked: 1}) {
		t.Errorf("counters after the restart %+v", c)
	}
	if got := f.applied()[viaRedisAgain.id]; got != 1 {
		t.Errorf("%s applied %d times", viaRedisAgain.id, got)
	}
	if n := f.redisPending(); n != 0 {
		t.Errorf("Redis pending %d", n)
	}
}

func TestHandlerErrorRedeliveredLater(t *testing.T) {
	f := newFixture(t, "fail")
	all := messages("fail", 4, 4)
	bad1, bad2, ok1, ok2 := all[0], all[1], all[2], all[3]
	var failing atomic.Bool
	failing.Store(true)
	sub := f.start(broker.Options{
		NATS:  f.natsOpts(func(o *broker.NATSOptions) { o.NakDelay = 100 * time.Millisecond }),
		Redis: f.redisOpts(func(o *broker.RedisOptions) { o.ClaimIdle = 200 * time.Millisecond }),
		Handler: func(ctx context.Context, tx *sql.Tx, m *broker.Message) error {
			if err := record(ctx, tx, m); err != nil { // rolled back with the transaction below
				return err
			}
			if failing.Load() && (m.ID == bad1.id || m.ID == bad2.id) {
				return errors.New("downstream unavailable")
			}
			return nil
		},
	})
	waitReady(t, sub)
	f.publishNATS(bad1)
	f.publishRedis(bad2)
	f.publishNATS(ok1)
	f.publishRedis(ok2)

	// Each failing message has come back at least twice; the others went through.
	waitFor(t, "redeliveries", 20*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Failed >= 3 && c.Redis.Failed >= 3 && c.NATS.Acked == 1 && c.Redis.Acked == 1
	})
	if got, want := f.applied(), map[string]int{ok1.id: 1, ok2.id: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if c := sub.Counters(); c.NATS.Received < 4 || c.Redis.Received < 4 {
		t.Errorf("received %+v: want the failing ones redelivered", c)
	}
	if _, ap := f.natsPending(); ap != 1 {
		t.Errorf("JetStream ack pending %d, want 1", ap)
	}
	if n := f.redisPending(); n != 1 {
		t.Errorf("Redis pending %d, want 1", n)
	}

	failing.Store(false)
	waitFor(t, "the failed ones acked", 20*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Acked == 2 && c.Redis.Acked == 2
	})
	want := map[string]int{bad1.id: 1, bad2.id: 1, ok1.id: 1, ok2.id: 1}
	if got := f.applied(); !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	for _, c := range []broker.PathCounters{sub.Counters().NATS, sub.Counters().Redis} {
		if c.Applied != 2 || c.Duplicates != 0 || c.Acked != 2 || c.Rejected != 0 {
			t.Errorf("counters %+v", c)
		}
	}
	f.expectNothingPending()
}

func TestPerKeyOrderWithinEachPath(t *testing.T) {
	f := newFixture(t, "order")
	onNATS := messages("order-nats", 200, 20) // 20 keys × 10, interleaved
	onRedis := messages("order-redis", 200, 20)
	for _, m := range onNATS {
		f.publishNATS(m)
	}
	for _, m := range onRedis {
		f.publishRedis(m)
	}

	// A message "runs" while its handler does, which sleeps a random few
	// hundred µs inside the transaction (the SQLite barrier serializes the
	// transactions, and the waiting ones take the lock in any order); it is
	// "in flight" from its handler's start to the end of AfterCommit, which
	// sleeps a random few ms outside the lane. Messages overlap and could
	// overtake each other, so the lanes are what keeps the order.
	var (
		mu          sync.Mutex
		inFlight    int
		maxInFlight int
		byKey       = map[string]int{}
		maxPerKey   int
	)
	sub := f.start(broker.Options{
		NATS:        f.natsOpts(),
		Redis:       f.redisOpts(),
		Concurrency: 8,
		Handler: func(ctx context.Context, tx *sql.Tx, m *broker.Message) error {
			mu.Lock()
			inFlight++
			byKey[m.Key]++
			maxInFlight, maxPerKey = max(maxInFlight, inFlight), max(maxPerKey, byKey[m.Key])
			mu.Unlock()
			defer func() {
				mu.Lock()
				byKey[m.Key]--
				mu.Unlock()
			}()
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
			return record(ctx, tx, m)
		},
		AfterCommit: func(_ context.Context, m *broker.Message, _ barrier.Outcome) error {
			time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
			return nil
		},
	})
	waitFor(t, "400 acks", 60*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Acked == 200 && c.Redis.Acked == 200
	})
	mu.Lock()
	if maxPerKey != 1 {
		t.Errorf("%d messages of one key ran at once", maxPerKey)
	}
	if maxInFlight < 2 {
		t.Errorf("at most %d messages were in flight at once: the test shows nothing", maxInFlight)
	}
	mu.Unlock()
	for _, tag := range []string{"order-nats", "order-redis"} {
		for k := 0; k < 20; k++ {
			key := tag + "-key-" + strconv.Itoa(k)
			var order []int
			rows, err := f.db.Query(`SELECT n FROM applied WHERE key = ? ORDER BY seq`, key)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n int
				_ = rows.Scan(&n)
				order = append(order, n)
			}
			rows.Close()
			if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !reflect.DeepEqual(order, want) {
				t.Errorf("%s applied in order %v, want %v", key, order, want)
			}
		}
	}
	if n := len(f.applied()); n != 400 {
		t.Errorf("%d ids applied, want 400", n)
	}
	if c := sub.Counters(); c.NATS.Failed+c.Redis.Failed != 0 {
		t.Errorf("failures %+v", c)
	}
}

// A confirmed JetStream ack can take the whole request timeout when NATS
// goes away; the message's effect is committed already, so the key's next
// message (here also one through Redis, as after a failover) must not wait
// for it. AfterCommit, which runs right before the ack, holds the first one.
func TestSlowAckDoesNotHoldItsKey(t *testing.T) {
	f := newFixture(t, "slowack")
	all := messages("slowack", 3, 1) // one key
	first, second, viaRedis := all[0], all[1], all[2]
	held := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	sub := f.start(broker.Options{
		NATS:  f.natsOpts(),
		Redis: f.redisOpts(),
		AfterCommit: func(ctx context.Context, m *broker.Message, _ barrier.Outcome) error {
			if m.ID == first.id {
				close(held)
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		},
	})
	t.Cleanup(letGo) // before the Stop start registered, should the test fail early
	waitReady(t, sub)
	f.publishNATS(first)
	f.publishNATS(second)
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the first message never committed")
	}
	f.publishRedis(viaRedis)

	waitFor(t, "the key's next messages applied and acked while the first one's ack waits", 10*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Acked == 1 && c.Redis.Acked == 1
	})
	if got, want := f.applied(), map[string]int{first.id: 1, second.id: 1, viaRedis.id: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if c := sub.Counters().NATS; c != (broker.PathCounters{Received: 2, Applied: 2, Acked: 1}) {
		t.Errorf("NATS counters while the first ack waits %+v", c)
	}
	if _, ap := f.natsPending(); ap != 1 {
		t.Errorf("JetStream ack pending %d, want 1", ap)
	}

	// A stop waits for the ack still under way.
	stopped := make(chan struct{})
	go func() {
		sub.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while an ack was under way")
	case <-time.After(300 * time.Millisecond):
	}
	letGo()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the ack was let go")
	}
	c := sub.Counters()
	if c.NATS != (broker.PathCounters{Received: 2, Applied: 2, Acked: 2}) || c.Redis != (broker.PathCounters{Received: 1, Applied: 1, Acked: 1}) {
		t.Errorf("counters %+v", c)
	}
	var order []string
	rows, err := f.db.Query(`SELECT id FROM applied ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		order = append(order, id)
	}
	rows.Close()
	if want := []string{first.id, second.id, viaRedis.id}; !reflect.DeepEqual(order, want) {
		t.Errorf("applied in order %v, want %v", order, want)
	}
	f.expectNothingPending()
}

func TestMalformedMessagesDropped(t *testing.T) {
	f := newFixture(t, "bad")
	sub := f.start(broker.Options{NATS: f.natsOpts(), Redis: f.redisOpts()})
	waitReady(t, sub)

	// JetStream: no Nats-Msg-Id; an id that is not <uid>/<branch>; a payload that is not JSON (Decode: Invalid).
	noID := nats.NewMsg(f.subject)
	noID.Header.Set(broker.HeaderKey, "k")
	noID.Data = []byte(`{"n":0}`)
	f.publishRaw(noID)
	for _, id := range []string{"no-slash", "uid-only/"} {
		m := nats.NewMsg(f.subject)
		m.Header.Set(broker.HeaderMsgID, id)
		m.Data = []byte(`{"n":0}`)
		f.publishRaw(m)
	}
	notJSON := nats.NewMsg(f.subject)
	notJSON.Header.Set(broker.HeaderMsgID, "uid-bad-json/deliver")
	notJSON.Header.Set(broker.HeaderKey, "k")
	notJSON.Data = []byte("not json")
	f.publishRaw(notJSON)
	// Redis: no id field; "/branch"; not JSON.
	f.xadd(3, broker.FieldKey, "k", broker.FieldData, `{"n":0}`)
	f.xadd(4, broker.FieldID, "/branch", broker.FieldKey, "k", broker.FieldData, `{"n":0}`)
	f.xadd(5, broker.FieldID, "uid-bad-json-redis/deliver", broker.FieldKey, "k", broker.FieldData, "{")
	// And a good message on each path after them, of the same key.
	good := messages("bad-good", 2, 1)
	good[0].key, good[1].key = "k", "k"
	f.publishNATS(good[0])
	f.publishRedis(good[1])

	waitFor(t, "4+3 rejected, 2 acked", 20*time.Second, func() bool {
		c := sub.Counters()
		return c.NATS.Rejected == 4 && c.Redis.Rejected == 3 && c.NATS.Acked == 1 && c.Redis.Acked == 1
	})
	if got, want := f.applied(), map[string]int{good[0].id: 1, good[1].id: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	// An Invalid payload records nothing in the barrier either: its transaction rolled back.
	if row, err := f.b.Get(f.ctx, "uid-bad-json", "deliver", barrier.Deliver); err != nil || row != nil {
		t.Errorf("barrier row for the invalid payload: %+v, %v", row, err)
	}
	if c := sub.Counters(); c.NATS.Failed+c.Redis.Failed != 0 {
		t.Errorf("failures %+v", c)
	}
	// Dropped means gone: TERM and XACK leave nothing pending.
	waitFor(t, "nothing pending", 5*time.Second, func() bool {
		p, ap := f.natsPending()
		return p == 0 && ap == 0 && f.redisPending() == 0
	})
}

func TestStopWaitsForMessagesInFlight(t *testing.T) {
	f := newFixture(t, "stop")
	started := make(chan struct{})
	release := make(chan struct{})
	sub := f.start(broker.Options{
		NATS: f.natsOpts(),
		Handler: func(ctx context.Context, tx *sql.Tx, m *broker.Message) error {
			close(started)
			<-release
			return record(ctx, tx, m)
		},
	})
	m := messages("stop", 1, 1)[0]
	f.publishNATS(m)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler never started")
	}
	stopped := make(chan struct{})
	go func() {
		sub.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a handler was running")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the handler finished")
	}
	select {
	case <-sub.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if c := sub.Counters().NATS; c != (broker.PathCounters{Received: 1, Applied: 1, Acked: 1}) {
		t.Errorf("counters %+v", c)
	}
	if p, ap := f.natsPending(); p != 0 || ap != 0 {
		t.Errorf("JetStream pending %d, ack pending %d", p, ap)
	}
	sub.Stop() // idempotent
}

func TestContextCancelStops(t *testing.T) {
	f := newFixture(t, "ctx")
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := broker.Subscribe(ctx, broker.Options{Redis: f.redisOpts(), Barrier: f.b, Handler: record, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, sub)
	cancel()
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not stopped 10s after its context was cancelled")
	}
}

package broker

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

// Defaults of Options.
const (
	DefaultConcurrency   = 16
	DefaultPrefetch      = 256
	DefaultShutdownGrace = 10 * time.Second
)

// Path is the way a message came: JetStream or the Redis fallback.
type Path string

// The two paths.
const (
	PathNATS  Path = "nats"
	PathRedis Path = "redis"
)

// Message is one broker message as the handler sees it.
type Message struct {
	// ID is "<transaction uid>/<branch>": the deduplication id on both paths.
	ID string
	// UID (metadata.uid of the DistributedTransaction) and Branch are the
	// barrier key, with the method Deliver.
	UID    string
	Branch string
	// Key is the message key (per-key order, the Redis shard).
	Key string
	// Namespace and Name identify the DistributedTransaction
	// (Kubetx-Transaction header / transaction field).
	Namespace string
	Name      string
	Subject   string
	Path      Path
	// Data is the payload: UTF-8 JSON bytes.
	Data []byte
	// Redelivered is true when the path has handed this message over before
	// (a JetStream redelivery, a Redis claim or a read of pending entries).
	Redelivered bool
}

// Decode unmarshals the JSON payload into v. When the data is not JSON (or
// does not fit v) it returns a participant.Invalid error: returned from the
// handler, the message is dropped, since it can never succeed.
func (m *Message) Decode(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return participant.Invalid("message %s: payload: %v", m.ID, err)
	}
	return nil
}

// Handler applies one message. It runs inside the barrier's transaction:
// write through tx, never Commit or Rollback it. A nil error commits (and
// the message is acked); an error rolls back and the message comes again,
// unless it is participant.Invalid (INVALID_ARGUMENT), which drops it.
type Handler func(ctx context.Context, tx *sql.Tx, m *Message) error

// PathCounters counts what happened on one path.
type PathCounters struct {
	// Received: messages handed over by the path (redeliveries included).
	Received int64
	// Applied: the handler ran and its transaction committed.
	Applied int64
	// Duplicates: the barrier already held the id; not applied again.
	Duplicates int64
	// Acked: acks the broker confirmed (JetStream double ack, XACK).
	Acked int64
	// Failed: the handler, the barrier, AfterCommit or the ack failed; left
	// for redelivery.
	Failed int64
	// Rejected: could never succeed (malformed envelope, Invalid); dropped
	// (JetStream TERM, Redis XACK).
	Rejected int64
}

// Counters are a snapshot of both paths' counters.
type Counters struct {
	NATS  PathCounters
	Redis PathCounters
}

// Options configures Subscribe. At least one of NATS and Redis is required,
// and Barrier and Handler.
type Options struct {
	// NATS is the JetStream path.
	NATS *NATSOptions
	// Redis is the sharded Redis fallback.
	Redis *RedisOptions
	// Barrier deduplicates by message id: every message runs in
	// Barrier.Run(ctx, barrier.Deliver, {uid, branch}, …).
	Barrier *barrier.Barrier
	Handler Handler
	// Concurrency is how many messages run their handler and transaction at
	// once over both paths (never two of one key); AfterCommit and the acks
	// of committed messages run outside it. Default DefaultConcurrency.
	Concurrency int
	// Prefetch is how many messages each path may have received and not
	// finished (a committed message is finished once its ack is); no fetch
	// or read is made while it is reached (one Redis read may bring up to
	// shards × Batch). Default DefaultPrefetch.
	Prefetch int
	// ShutdownGrace bounds how long a stop waits for the messages in flight;
	// those still running then have their context cancelled (their
	// transaction rolls back, they come again). Default DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// AfterCommit, if set, is called after a message's transaction
	// committed (or the barrier found it applied) and before its ack: for
	// metrics, and the tests crash the consumer there. If it returns an
	// error (or panics) the message is not acked (it comes again, and the
	// barrier answers it). Like the ack it runs outside the key's lane: the
	// key's next message may run meanwhile.
	AfterCommit func(ctx context.Context, m *Message, outcome barrier.Outcome) error
	// Logger receives the subscription's log lines (never a payload).
	// Default slog.Default().
	Logger *slog.Logger
}

// Subscription is a running Subscribe.
type Subscription struct {
	d           *dispatcher
	paths       []source
	log         *slog.Logger
	grace       time.Duration
	stopFetch   context.CancelFunc
	cancelWork  context.CancelFunc
	fetching    sync.WaitGroup
	done        chan struct{}
	stoppedOnce sync.Once
}

// source is one running path.
type source interface {
	// run fetches until ctx is done; it returns only then.
	run(ctx context.Context)
	// close closes the connections the path opened, after every message finished.
	close()
}

// Subscribe validates opts and starts reading the configured paths in the
// background; it returns at once. Either path may be unreachable at first:
// its setup and reads are retried with backoff (200 ms doubling to 5 s)
// while the other path goes on. When ctx is done, the subscription stops as
// Stop does (handlers in flight keep ctx's values but not its
// cancellation, for ShutdownGrace).
func Subscribe(ctx context.Context, opts Options) (*Subscription, error) {
	if opts.NATS == nil && opts.Redis == nil {
		return nil, errors.New("broker: give Options.NATS, Options.Redis or both")
	}
	if opts.Barrier == nil || opts.Handler == nil {
		return nil, errors.New("broker: Options.Barrier and Options.Handler are required")
	}
	concurrency, err := positive(opts.Concurrency, DefaultConcurrency, "Concurrency")
	if err != nil {
		return nil, err
	}
	prefetch, err := positive(opts.Prefetch, DefaultPrefetch, "Prefetch")
	if err != nil {
		return nil, err
	}
	grace := opts.ShutdownGrace
	if grace < 0 {
		return nil, fmt.Errorf("broker: negative ShutdownGrace %v", grace)
	}
	if grace == 0 {
		grace = DefaultShutdownGrace
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "kubetx-subscribe")

	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	fetch, stopFetch := context.WithCancel(ctx)
	var wanted []Path
	var paths []source
	d := newDispatcher(work, &opts, log, concurrency, prefetch)
	if opts.NATS != nil {
		p, err := newNATSPath(*opts.NATS, d, log)
		if err != nil {
			stopFetch()
			cancelWork()
			return nil, err
		}
		wanted = append(wanted, PathNATS)
		paths = append(paths, p)
	}
	if opts.Redis != nil {
		natsSubject := ""
		if opts.NATS != nil {
			natsSubject = opts.NATS.Subject
		}
		p, err := newRedisPath(*opts.Redis, natsSubject, d, work, log)
		if err != nil {
			stopFetch()
			cancelWork()
			return nil, err
		}
		wanted = append(wanted, PathRedis)
		paths = append(paths, p)
	}
	d.expect(wanted)

	s := &Subscription{d: d, paths: paths, log: log, grace: grace, stopFetch: stopFetch, cancelWork: cancelWork, done: make(chan struct{})}
	for _, p := range paths {
		s.fetching.Add(1)
		go func() {
			defer s.fetching.Done()
			p.run(fetch)
		}()
	}
	go func() {
		<-fetch.Done()
		s.shutdown()
	}()
	return s, nil
}

// Ready is closed once every configured path has its consumer in place
// (the JetStream durable, the Redis groups). It stays open if the
// subscription stops first: select on Done as well.
func (s *Subscription) Ready() <-chan struct{} { return s.d.readyCh }

// Done is closed once the subscription has stopped: nothing is fetched,
// every message received has finished and the connections it opened are
// closed.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Counters returns a snapshot of the counters, per path.
func (s *Subscription) Counters() Counters { return s.d.snapshot() }

// Stop stops fetching, waits for the messages in flight to finish (handler,
// commit, ack) for up to ShutdownGrace and then cancels them, closes the
// connections it opened (a Conn or Client passed in stays open), and
// returns once all that is done. Safe to call more than once and
// concurrently.
func (s *Subscription) Stop() {
	s.stopFetch()
	<-s.done
}

func (s *Subscription) shutdown() {
	s.stoppedOnce.Do(func() {
		s.fetching.Wait()
		select {
		case <-s.d.idle():
		case <-time.After(s.grace):
			s.log.Warn("messages still in flight after the shutdown grace: cancelling them", "grace", s.grace.String())
			s.cancelWork()
			<-s.d.idle()
		}
		for _, p := range s.paths {
			p.close()
		}
		s.cancelWork()
		c := s.d.snapshot()
		s.log.Info("subscription stopped", "nats", c.NATS, "redis", c.Redis)
		close(s.done)
	})
}

func positive(v, def int, what string) (int, error) {
	if v == 0 {
		return def, nil
	}
	if v < 0 {
		return 0, fmt.Errorf("broker: %s must be positive, got %d", what, v)
	}
	return v, nil
}

// backoff is the paths' retry delay: 200 ms doubling to 5 s.
type backoff struct{ next time.Duration }

func (b *backoff) wait() time.Duration {
	if b.next == 0 {
		b.next = 200 * time.Millisecond
	}
	d := b.next
	b.next = min(2*b.next, 5*time.Second)
	return d
}

func (b *backoff) reset() { b.next = 0 }

// pause waits for d or ctx; false when ctx is done.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

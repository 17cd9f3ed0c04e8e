package broker

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/participant"
)

// delivery is a message as a path read it, before validation, with that
// path's ways to finish it.
type delivery struct {
	path        Path
	id          string
	key         string
	transaction string
	subject     string
	data        []byte
	redelivered bool
	// ack acks; nil once the broker confirmed.
	ack func(ctx context.Context) error
	// retry leaves the message for redelivery (JetStream: NAK with a delay).
	retry func()
	// reject drops a message that can never succeed (JetStream: TERM; Redis: XACK).
	reject func(ctx context.Context, reason string) error
}

// dispatcher runs deliveries in per-key lanes over a bounded number of
// concurrent messages. A lane exists while its key has messages queued or
// running; it runs them one at a time in the order they were dispatched,
// whichever path they came by.
type dispatcher struct {
	ctx      context.Context // the handlers' context (cancelled after the shutdown grace)
	opts     *Options
	log      *slog.Logger
	prefetch int
	slots    chan struct{}
	readyCh  chan struct{}

	mu       sync.Mutex
	lanes    map[string][]*delivery
	inFlight map[Path]int
	counters map[Path]*PathCounters
	// changed is closed (and replaced) whenever a message finishes.
	changed chan struct{}
	wanted  []Path
	ready   map[Path]bool
}

func newDispatcher(ctx context.Context, opts *Options, log *slog.Logger, concurrency, prefetch int) *dispatcher {
	return &dispatcher{
		ctx: ctx, opts: opts, log: log, prefetch: prefetch,
		slots:    make(chan struct{}, concurrency),
		readyCh:  make(chan struct{}),
		lanes:    map[string][]*delivery{},
		inFlight: map[Path]int{},
		counters: map[Path]*PathCounters{PathNATS: {}, PathRedis: {}},
		changed:  make(chan struct{}),
		ready:    map[Path]bool{},
	}
}

func (d *dispatcher) expect(paths []Path) { d.wanted = paths }

// markReady records that path's consumer is set up (again: idempotent).
func (d *dispatcher) markReady(path Path) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ready[path] {
		return
	}
	d.ready[path] = true
	for _, p := range d.wanted {
		if !d.ready[p] {
			return
		}
	}
	close(d.readyCh)
}

func (d *dispatcher) snapshot() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Counters{NATS: *d.counters[PathNATS], Redis: *d.counters[PathRedis]}
}

func (d *dispatcher) count(path Path, f func(*PathCounters)) {
	d.mu.Lock()
	f(d.counters[path])
	d.mu.Unlock()
}

// room is how many more messages path may receive now.
func (d *dispatcher) room(path Path) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(0, d.prefetch-d.inFlight[path])
}

// waitForRoom waits until room(path) > 0; false when ctx is done first.
func (d *dispatcher) waitForRoom(ctx context.Context, path Path) bool {
	for {
		d.mu.Lock()
		if d.prefetch-d.inFlight[path] > 0 {
			d.mu.Unlock()
			return ctx.Err() == nil
		}
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// idle is closed once no message is in flight on any path.
func (d *dispatcher) idle() <-chan struct{} {
	out := make(chan struct{})
	go func() {
		for {
			d.mu.Lock()
			n := 0
			for _, v := range d.inFlight {
				n += v
			}
			ch := d.changed
			d.mu.Unlock()
			if n == 0 {
				close(out)
				return
			}
			<-ch
		}
	}()
	return out
}

func (d *dispatcher) dispatch(m *delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight[m.path]++
	d.counters[m.path].Received++
	// Without a key there is no order to keep: the id is a lane of its own.
	lane := "i:" + m.id
	if m.key != "" {
		lane = "k:" + m.key
	}
	if q, ok := d.lanes[lane]; ok {
		d.lanes[lane] = append(q, m)
		return
	}
	d.lanes[lane] = []*delivery{m}
	go d.drain(lane)
}

// drain runs lane's messages one at a time. A message holds its lane and a
// slot until its transaction committed (or failed); its AfterCommit and ack
// then run on their own (a confirmed JetStream ack can take the whole
// request timeout when NATS goes away), so the key's next message need not
// wait for them: its predecessor's effect is committed already. Until its
// ack has finished the message still counts in flight (Prefetch, and a stop
// waits for it).
func (d *dispatcher) drain(lane string) {
	for {
		d.mu.Lock()
		m := d.lanes[lane][0]
		d.mu.Unlock()

		d.slots <- struct{}{}
		settle := d.process(m)
		<-d.slots

		d.mu.Lock()
		q := d.lanes[lane][1:]
		if len(q) == 0 {
			delete(d.lanes, lane)
		} else {
			d.lanes[lane] = q
		}
		if settle == nil {
			d.finishedLocked(m.path)
		}
		d.mu.Unlock()
		if settle != nil {
			go func() {
				settle()
				d.mu.Lock()
				d.finishedLocked(m.path)
				d.mu.Unlock()
			}()
		}
		if len(q) == 0 {
			return
		}
	}
}

// finishedLocked records that a message of path finished; d.mu is held.
func (d *dispatcher) finishedLocked(path Path) {
	d.inFlight[path]--
	close(d.changed)
	d.changed = make(chan struct{})
}

// process runs m in the barrier. Once its transaction committed (or the
// barrier found it applied), it returns what is left to do, AfterCommit and
// the ack, for the caller to run outside the lane; nil when the message is
// finished already (dropped, failed, or panicked).
func (d *dispatcher) process(m *delivery) func() {
	log := d.log.With("path", string(m.path), "id", m.id, "key", m.key)
	defer d.recovered(log, m)
	msg, problem := toMessage(m)
	if problem != "" {
		log.Error("malformed broker message: dropped", "reason", problem)
		d.drop(log, m, problem)
		return nil
	}
	req := &participant.Request{TransactionUID: msg.UID, Branch: msg.Branch, Namespace: msg.Namespace, Name: msg.Name, Payload: msg.Data}
	_, outcome, err := d.opts.Barrier.Run(d.ctx, barrier.Deliver, req, func(ctx context.Context, tx *sql.Tx, _ *participant.Request) (*participant.Response, error) {
		if err := d.runHandler(ctx, log, tx, msg); err != nil {
			return nil, err
		}
		return &participant.Response{Message: "via " + string(m.path)}, nil
	})
	if err != nil {
		if st := participant.Status(err); st.Code() == codes.InvalidArgument {
			log.Error("message can never be applied (Invalid): dropped", "reason", st.Message())
			d.drop(log, m, st.Message())
			return nil
		}
		d.count(m.path, func(c *PathCounters) { c.Failed++ })
		log.Warn("handler failed: not acked, the message comes again", "err", err.Error(), "redelivered", m.redelivered)
		m.retry()
		return nil
	}
	d.count(m.path, func(c *PathCounters) {
		if outcome == barrier.Executed {
			c.Applied++
		} else {
			c.Duplicates++
		}
	})
	return func() { d.ack(log, m, msg, outcome) }
}

// ack runs AfterCommit and acks a message whose transaction committed.
func (d *dispatcher) ack(log *slog.Logger, m *delivery, msg *Message, outcome barrier.Outcome) {
	defer d.recovered(log, m)
	if d.opts.AfterCommit != nil {
		if err := d.opts.AfterCommit(d.ctx, msg, outcome); err != nil {
			d.count(m.path, func(c *PathCounters) { c.Failed++ })
			log.Warn("committed but not acked (AfterCommit failed): the message comes again and the barrier answers it", "err", err.Error(), "outcome", outcome.String())
			m.retry()
			return
		}
	}
	if err := m.ack(d.ctx); err != nil {
		d.count(m.path, func(c *PathCounters) { c.Failed++ })
		log.Warn("committed but not acked: the message comes again and the barrier answers it", "err", err.Error(), "outcome", outcome.String())
		m.retry()
		return
	}
	d.count(m.path, func(c *PathCounters) { c.Acked++ })
	log.Debug("message done", "outcome", outcome.String())
}

// recovered, deferred, turns a panic while finishing m (the barrier,
// AfterCommit, the ack) into a failure: m is left for redelivery. (A panic
// in process returns nil: nothing more runs for m.)
func (d *dispatcher) recovered(log *slog.Logger, m *delivery) {
	p := recover()
	if p == nil {
		return
	}
	log.Error("panic finishing a message: not acked, it comes again", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	d.count(m.path, func(c *PathCounters) { c.Failed++ })
	m.retry()
}

// runHandler turns a panic in the handler into an error, so the barrier
// rolls back as for any failure.
func (d *dispatcher) runHandler(ctx context.Context, log *slog.Logger, tx *sql.Tx, msg *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("message %s: handler panicked: %v", msg.ID, p)
		}
	}()
	return d.opts.Handler(ctx, tx, msg)
}

func (d *dispatcher) drop(log *slog.Logger, m *delivery, reason string) {
	if err := m.reject(d.ctx, reason); err != nil {
		d.count(m.path, func(c *PathCounters) { c.Failed++ })
		log.Warn("dropping the message failed: it comes again", "err", err.Error())
		m.retry()
		return
	}
	d.count(m.path, func(c *PathCounters) { c.Rejected++ })
}

// toMessage is the handler's view of a delivery, or why it is malformed.
func toMessage(m *delivery) (*Message, string) {
	slash := strings.IndexByte(m.id, '/')
	if slash <= 0 || slash == len(m.id)-1 {
		return nil, fmt.Sprintf("message id %q is not \"<transaction uid>/<branch>\"", m.id)
	}
	namespace, name, ok := strings.Cut(m.transaction, "/")
	if !ok {
		namespace, name = "", m.transaction
	}
	return &Message{
		ID:          m.id,
		UID:         m.id[:slash],
		Branch:      m.id[slash+1:],
		Key:         m.key,
		Namespace:   namespace,
		Name:        name,
		Subject:     m.subject,
		Path:        m.path,
		Data:        m.data,
		Redelivered: m.redelivered,
	}, ""
}

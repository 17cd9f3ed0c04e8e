package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOptions configures the JetStream path: a durable pull consumer on the
// stream kubetx publishes to.
type NATSOptions struct {
	// URL is the server URL, e.g. "nats://nats.messaging:4222" (several,
	// comma-separated). Give URL or Conn.
	URL string
	// ConnectOptions are passed to nats.Connect with URL (credentials, TLS).
	ConnectOptions []nats.Option
	// Conn is a connection of your own; Stop leaves it open.
	Conn *nats.Conn
	// Stream is the stream kubetx publishes to (the branch's broker stream). Required.
	Stream string
	// Durable is the durable pull consumer, created if missing. One per
	// consuming service. Required.
	Durable string
	// Subject is the filter subject of the consumer this creates, and the
	// Redis subject when RedisOptions.Subject is empty. Default: the whole stream.
	Subject string
	// AckWait is the ack wait of the consumer this creates (an existing
	// consumer keeps its own). Default 30 s.
	AckWait time.Duration
	// NakDelay is how long JetStream waits before it redelivers a message
	// whose handler failed. Default 1 s; negative: at once.
	NakDelay time.Duration
	// Expires is how long one pull request waits for messages; at least
	// 1 s (and a stop waits for it). Default 1 s.
	Expires time.Duration
}

// natsPath is the JetStream path. Until a message is settled (while it waits
// in its lane, runs, or waits for AfterCommit), an in-progress signal (+WPI)
// goes every third of ack_wait so JetStream does not redeliver it meanwhile.
// Acks are double acks (the server confirms them). Connection problems and a
// stream that does not exist yet are retried with backoff, so the path may
// start before the broker is up; after any failure the consumer is looked up
// again (and created again if it is gone).
type natsPath struct {
	o   NATSOptions
	d   *dispatcher
	log *slog.Logger

	mu  sync.Mutex
	own *nats.Conn
}

func newNATSPath(o NATSOptions, d *dispatcher, log *slog.Logger) (*natsPath, error) {
	if o.Stream == "" || o.Durable == "" {
		return nil, errors.New("broker: NATS.Stream and NATS.Durable are required")
	}
	if (o.URL == "") == (o.Conn == nil) {
		return nil, errors.New("broker: give one of NATS.URL and NATS.Conn")
	}
	if o.AckWait < 0 {
		return nil, fmt.Errorf("broker: negative NATS.AckWait %v", o.AckWait)
	}
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.NakDelay == 0 {
		o.NakDelay = time.Second
	}
	if o.Expires == 0 {
		o.Expires = time.Second
	}
	if o.Expires < time.Second {
		return nil, fmt.Errorf("broker: NATS.Expires must be at least 1s, got %v", o.Expires)
	}
	log = log.With("path", string(PathNATS), "stream", o.Stream, "durable", o.Durable)
	return &natsPath{o: o, d: d, log: log}, nil
}

func (p *natsPath) run(ctx context.Context) {
	var retry backoff
	nc := p.o.Conn
	for nc == nil {
		// With RetryOnFailedConnect the first connection is made in the
		// background too; an error here is a bad URL or option.
		opts := append([]nats.Option{nats.Name("kubetx-subscribe/" + p.o.Durable),
			nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1)}, p.o.ConnectOptions...)
		c, err := nats.Connect(p.o.URL, opts...)
		if err != nil {
			p.log.Warn("connecting to NATS failed; retrying", "err", err.Error())
			if !pause(ctx, retry.wait()) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.own = c
		p.mu.Unlock()
		nc = c
	}
	js, err := jetstream.New(nc)
	if err != nil {
		p.log.Error("the JetStream path cannot start", "err", err.Error())
		return
	}
	retry.reset()
	var (
		consumer  jetstream.Consumer
		heartbeat time.Duration
	)
	for ctx.Err() == nil {
		if consumer == nil {
			consumer, heartbeat, err = p.setup(ctx, js)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.log.Warn("setting up the JetStream consumer failed; retrying", "err", err.Error())
				consumer = nil
				if !pause(ctx, retry.wait()) {
					return
				}
				continue
			}
			p.d.markReady(PathNATS)
		}
		if !p.d.waitForRoom(ctx, PathNATS) {
			return
		}
		// Not cancelled by ctx: a stop waits for the pull (Expires), and
		// the messages it brings are processed, not left to ack_wait.
		batch, err := consumer.Fetch(p.d.room(PathNATS), jetstream.FetchMaxWait(p.o.Expires))
		if err == nil {
			for m := range batch.Messages() {
				p.d.dispatch(p.delivery(m, heartbeat))
			}
			err = batch.Error()
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("fetching from JetStream failed; retrying", "err", err.Error())
			consumer = nil
			if !pause(ctx, retry.wait()) {
				return
			}
			continue
		}
		retry.reset()
	}
}

// setup looks the durable up, creating it if missing, and returns it with
// the in-progress interval (a third of its ack_wait).
func (p *natsPath) setup(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	consumer, err := js.Consumer(ctx, p.o.Stream, p.o.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		consumer, err = js.CreateConsumer(ctx, p.o.Stream, jetstream.ConsumerConfig{
			Durable:       p.o.Durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       p.o.AckWait,
			FilterSubject: p.o.Subject,
		})
		if err == nil {
			p.log.Info("created the durable consumer", "ackWait", p.o.AckWait.String(), "subject", p.o.Subject)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	heartbeat := p.o.AckWait / 3
	if info := consumer.CachedInfo(); info != nil {
		if f := info.Config.FilterSubject; p.o.Subject != "" && f != "" && f != p.o.Subject {
			p.log.Warn("the existing durable consumer filters another subject; using it as it is", "subject", p.o.Subject, "filterSubject", f)
		}
		if info.Config.AckWait > 0 {
			heartbeat = info.Config.AckWait / 3
		}
	}
	return consumer, max(heartbeat, 100*time.Millisecond), nil
}

func (p *natsPath) delivery(m jetstream.Msg, heartbeat time.Duration) *delivery {
	redelivered := false
	if meta, err := m.Metadata(); err == nil {
		redelivered = meta.NumDelivered > 1
	}
	stop := make(chan struct{})
	var once sync.Once
	settle := func() { once.Do(func() { close(stop) }) }
	go func() {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = m.InProgress()
			case <-stop:
				return
			}
		}
	}()
	h := m.Headers()
	return &delivery{
		path:        PathNATS,
		id:          h.Get(HeaderMsgID),
		key:         h.Get(HeaderKey),
		transaction: h.Get(HeaderTransaction),
		subject:     m.Subject(),
		data:        m.Data(),
		redelivered: redelivered,
		ack: func(ctx context.Context) error {
			settle()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return m.DoubleAck(ctx)
		},
		retry: func() {
			settle()
			if p.o.NakDelay > 0 {
				_ = m.NakWithDelay(p.o.NakDelay)
			} else {
				_ = m.Nak()
			}
		},
		reject: func(_ context.Context, reason string) error {
			settle()
			return m.TermWithReason(reason)
		},
	}
}

func (p *natsPath) close() {
	p.mu.Lock()
	own := p.own
	p.mu.Unlock()
	if own == nil {
		return
	}
	// The NAKs and TERMs are published without waiting: send them first.
	if own.IsConnected() {
		_ = own.FlushTimeout(2 * time.Second)
	}
	own.Close()
}

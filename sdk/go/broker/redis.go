package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the sharded Redis fallback: one consumer group
// over every shard stream <Prefix>:<Subject>:<shard>.
type RedisOptions struct {
	// URL is e.g. "redis://redis.messaging:6379" (redis.ParseURL). Give URL or Client.
	URL string
	// Client is a client of your own; Stop leaves it open.
	Client *redis.Client
	// Subject is the subject in the stream keys (no wildcards). Default NATSOptions.Subject.
	Subject string
	// Prefix of the stream keys. Default DefaultPrefix.
	Prefix string
	// Shards is the number of shard streams; it must match the publisher's.
	// Default DefaultShards.
	Shards int
	// Group is the consumer group: one per consuming service. Required.
	Group string
	// Consumer is this consumer's name in the group; keep it stable across
	// restarts (e.g. the pod name), so a restart reads its own pending
	// entries first. Required.
	Consumer string
	// Block is how long one XREADGROUP waits for entries (a stop waits for
	// it). Default 1 s.
	Block time.Duration
	// Batch is the COUNT per shard of one XREADGROUP or XAUTOCLAIM. Default 16.
	Batch int
	// ClaimIdle: an entry pending this long (a failed handler's, a dead
	// consumer's) is claimed (XAUTOCLAIM) and handed over again. Default 30 s.
	ClaimIdle time.Duration
}

// redisPath is the Redis path:
//
//   - setup: XGROUP CREATE <key> <group> 0 MKSTREAM on every shard
//     (BUSYGROUP: already there), so entries written before the consumer
//     first started are read too;
//   - start: this consumer's own pending entries (a restart under the same
//     name), XREADGROUP … STREAMS <keys> 0 …, until none is left;
//   - then XREADGROUP … COUNT <batch> BLOCK <block> STREAMS <all keys> > …,
//     one call over all the shards, only while the dispatcher has room;
//   - meanwhile, every ClaimIdle/2, XAUTOCLAIM takes over entries pending
//     longer than ClaimIdle and hands them over again; entries this process
//     is still working on are skipped;
//   - XACK after the local commit.
//
// go-redis gives a blocking read a pooled connection of its own, so acks
// and claims never wait behind it.
type redisPath struct {
	o       RedisOptions
	subject string
	keys    []string
	d       *dispatcher
	work    context.Context
	log     *slog.Logger
	client  *redis.Client
	own     bool

	mu sync.Mutex
	// working holds "<stream key> <entry id>" of every entry handed over and not finished.
	working map[string]bool
}

func newRedisPath(o RedisOptions, natsSubject string, d *dispatcher, work context.Context, log *slog.Logger) (*redisPath, error) {
	subject := o.Subject
	if subject == "" {
		subject = natsSubject
	}
	if subject == "" {
		return nil, errors.New("broker: give Redis.Subject (or NATS.Subject)")
	}
	if strings.ContainsAny(subject, "*> \t\r\n") {
		return nil, fmt.Errorf("broker: Redis subject %q must be one subject, without wildcards", subject)
	}
	if o.Group == "" || o.Consumer == "" {
		return nil, errors.New("broker: Redis.Group and Redis.Consumer are required")
	}
	if (o.URL == "") == (o.Client == nil) {
		return nil, errors.New("broker: give one of Redis.URL and Redis.Client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	var err error
	if o.Shards, err = positive(o.Shards, DefaultShards, "Redis.Shards"); err != nil {
		return nil, err
	}
	if o.Batch, err = positive(o.Batch, 16, "Redis.Batch"); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		d    *time.Duration
		def  time.Duration
		name string
	}{{&o.Block, time.Second, "Block"}, {&o.ClaimIdle, 30 * time.Second, "ClaimIdle"}} {
		if *v.d < 0 {
			return nil, fmt.Errorf("broker: negative Redis.%s %v", v.name, *v.d)
		}
		if *v.d == 0 {
			*v.d = v.def
		}
	}
	p := &redisPath{o: o, subject: subject, d: d, work: work, client: o.Client, working: map[string]bool{}}
	if p.client == nil {
		opt, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("broker: Redis.URL: %w", err)
		}
		p.client, p.own = redis.NewClient(opt), true
	}
	p.keys = make([]string, o.Shards)
	for i := range p.keys {
		p.keys[i] = StreamKey(o.Prefix, subject, i)
	}
	p.log = log.With("path", string(PathRedis), "group", o.Group, "consumer", o.Consumer,
		"streams", fmt.Sprintf("%s:%s:{0..%d}", o.Prefix, subject, o.Shards-1))
	return p, nil
}

func (p *redisPath) run(ctx context.Context) {
	if !p.setup(ctx) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.readLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		p.claimLoop(ctx)
	}()
	wg.Wait()
}

// setup creates the group on every shard stream, retrying until it works
// or ctx is done (false).
func (p *redisPath) setup(ctx context.Context) bool {
	var retry backoff
	for ctx.Err() == nil {
		cmds, _ := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, key := range p.keys {
				pipe.XGroupCreateMkStream(ctx, key, p.o.Group, "0")
			}
			return nil
		})
		var err error
		for _, c := range cmds {
			if e := c.Err(); e != nil && !redis.HasErrorPrefix(e, "BUSYGROUP") {
				err = e
				break
			}
		}
		if err == nil && len(cmds) == len(p.keys) {
			p.d.markReady(PathRedis)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.log.Warn("creating the consumer groups failed; retrying", "err", fmt.Sprint(err))
		if !pause(ctx, retry.wait()) {
			return false
		}
	}
	return false
}

func (p *redisPath) readLoop(ctx context.Context) {
	var retry backoff
	// This consumer's own pending entries first (it restarted under the same name), then new ones.
	cursors := make([]string, len(p.keys))
	index := make(map[string]int, len(p.keys))
	for i, k := range p.keys {
		cursors[i] = "0"
		index[k] = i
	}
	history := true
	for {
		if !p.d.waitForRoom(ctx, PathRedis) {
			return
		}
		args := &redis.XReadGroupArgs{Group: p.o.Group, Consumer: p.o.Consumer, Count: int64(p.o.Batch), Block: -1}
		args.Streams = append(append([]string{}, p.keys...), cursors...)
		if !history {
			args.Block = p.o.Block
			for i := range cursors {
				args.Streams[len(p.keys)+i] = ">"
			}
		}
		// A stop does not interrupt a read in progress (go-redis leaves the
		// socket alone unless ContextTimeoutEnabled): it waits for it (Block)
		// and processes what it brings. Entries whose reply is lost stay
		// pending: read again on a restart, or claimed.
		streams, err := p.client.XReadGroup(ctx, args).Result()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("XREADGROUP failed; retrying", "err", err.Error())
			if !pause(ctx, retry.wait()) {
				return
			}
			// The groups are gone (a Redis that lost its data): create them again.
			if redis.HasErrorPrefix(err, "NOGROUP") && !p.setup(ctx) {
				return
			}
			continue
		}
		got := 0
		for _, s := range streams {
			got += len(s.Messages)
			if history && len(s.Messages) > 0 {
				cursors[index[s.Stream]] = s.Messages[len(s.Messages)-1].ID
			}
			p.handAll(s.Stream, s.Messages, history)
		}
		if history && got == 0 {
			history = false
		}
		retry.reset()
		if ctx.Err() != nil {
			return
		}
	}
}

func (p *redisPath) claimLoop(ctx context.Context) {
	var retry backoff
	interval := max(100*time.Millisecond, p.o.ClaimIdle/2)
	type cursor struct{ key, start string }
	for pause(ctx, interval) {
		cursors := make([]cursor, len(p.keys))
		for i, k := range p.keys {
			cursors[i] = cursor{k, "0-0"}
		}
		var err error
		for len(cursors) > 0 && ctx.Err() == nil && p.d.room(PathRedis) > 0 {
			var cmds []redis.Cmder
			cmds, err = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
				for _, c := range cursors {
					pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: c.key, Group: p.o.Group, Consumer: p.o.Consumer,
						MinIdle: p.o.ClaimIdle, Start: c.start, Count: int64(p.o.Batch)})
				}
				return nil
			})
			if err != nil {
				break
			}
			var more []cursor
			for i, c := range cmds {
				entries, next, _ := c.(*redis.XAutoClaimCmd).Result()
				if len(entries) > 0 {
					p.log.Info("claimed pending entries", "stream", cursors[i].key, "entries", len(entries))
				}
				p.handAll(cursors[i].key, entries, true)
				if next != "0-0" {
					more = append(more, cursor{cursors[i].key, next})
				}
			}
			cursors = more
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("XAUTOCLAIM failed; retrying", "err", err.Error())
			if !pause(ctx, retry.wait()) {
				return
			}
			continue
		}
		retry.reset()
	}
}

// handAll hands over what a read or claim returned; an entry deleted from
// the stream (no fields) is acked away.
func (p *redisPath) handAll(key string, entries []redis.XMessage, redelivered bool) {
	for _, e := range entries {
		if len(e.Values) == 0 {
			if err := p.client.XAck(p.work, key, p.o.Group, e.ID).Err(); err != nil {
				p.log.Warn("acking a deleted entry failed", "stream", key, "entry", e.ID, "err", err.Error())
			}
			continue
		}
		p.hand(key, e, redelivered)
	}
}

func (p *redisPath) hand(key string, e redis.XMessage, redelivered bool) {
	tag := key + " " + e.ID
	p.mu.Lock()
	if p.working[tag] {
		p.mu.Unlock()
		return
	}
	p.working[tag] = true
	p.mu.Unlock()
	unwork := func() {
		p.mu.Lock()
		delete(p.working, tag)
		p.mu.Unlock()
	}
	done := func(ctx context.Context) error {
		defer unwork()
		return p.client.XAck(ctx, key, p.o.Group, e.ID).Err()
	}
	field := func(name string) string {
		s, _ := e.Values[name].(string)
		return s
	}
	p.d.dispatch(&delivery{
		path:        PathRedis,
		id:          field(FieldID),
		key:         field(FieldKey),
		transaction: field(FieldTransaction),
		subject:     p.subject,
		data:        []byte(field(FieldData)),
		redelivered: redelivered,
		ack:         done,
		retry:       unwork,
		reject:      func(ctx context.Context, _ string) error { return done(ctx) },
	})
}

func (p *redisPath) close() {
	if p.own {
		_ = p.client.Close()
	}
}

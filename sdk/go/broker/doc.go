// Package broker is the consumer side of kubetx's broker delivery (the Go
// counterpart of the TypeScript SDK's @kubetx/participant/broker). One
// Subscribe reads both paths a Message or Notify branch with a broker
// destination can take, at the same time:
//
//   - NATS JetStream (the primary): a durable pull consumer on the stream;
//   - the sharded Redis fallback (used while the broker is unhealthy): one
//     consumer group over every shard stream <prefix>:<subject>:<shard>.
//
// Each message runs the handler inside the barrier's local transaction
// under the barrier key of a gRPC Deliver for the same branch: (uid, branch,
// Deliver), the message id being "<uid>/<branch>". The ack (a JetStream
// double ack, a Redis XACK) is sent only after that transaction committed.
// So:
//
//   - at-least-once on each path: a message is acked after its effect
//     committed, never before; a crash in between brings it back (JetStream
//     after ack_wait; Redis to the same consumer on its restart, or to
//     another one by XAUTOCLAIM once it has been pending for ClaimIdle);
//   - applied once: a message whose id the barrier already holds (a
//     redelivery, the same message on the other path after a failover, or a
//     gRPC Deliver of the same branch) is acked without running the handler;
//   - per-key order: two messages with the same key never run at once (a
//     lane per key, shared by both paths), and each path hands them over in
//     the order it stores them (one subject; one shard stream per key). With
//     one consumer per durable and group that keeps a key's order within
//     each path, unless a handler error or a crash sends a message back for
//     redelivery while later ones of its key go ahead. Between the two paths
//     no order is kept.
//
// A message holds its key's lane (and one of Concurrency's slots) until its
// transaction has committed or rolled back. AfterCommit and the ack then run
// on their own, outside the lane: a confirmed JetStream ack can wait the
// whole request timeout when NATS goes away, and the key's next message (it
// may come through Redis after a failover) need not wait behind it, since
// the effect is committed already. So a key's next message may be applied
// before the previous one's ack is sent, never before its commit. Until its
// ack has finished a message still counts against Prefetch, and a stop waits
// for it.
//
// A handler error acks nothing: JetStream gets a NAK with NakDelay and
// redelivers; a Redis entry stays pending and is claimed again once it has
// been idle for ClaimIdle. A message that can never succeed (an envelope
// without a valid id, or a handler returning participant.Invalid, as
// Message.Decode does for data that is not JSON) is logged and dropped:
// JetStream TERM, Redis XACK.
//
// The wire format (what the operator publishes, src/brokers/message.ts):
//
//	                   JetStream                    Redis fallback
//	where              subject in stream            stream <prefix>:<subject>:<shard>,
//	                                                shard = FNV-1a-64(key) mod shards (Shard)
//	id <uid>/<branch>  header Nats-Msg-Id           field id
//	key                header Kubetx-Key            field key
//	transaction        header Kubetx-Transaction    field transaction (<namespace>/<name>)
//	payload            the data (JSON bytes)        field data (UTF-8 JSON)
//
// The package imports the NATS and Redis clients; the other packages of the
// SDK do not, so a participant without a broker does not build them.
package broker

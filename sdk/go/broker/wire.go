package broker

import (
	"hash/fnv"
	"strconv"
)

// The headers of a JetStream message kubetx publishes (src/brokers/message.ts).
const (
	// HeaderMsgID carries the message id, <transaction uid>/<branch>; it is
	// JetStream's deduplication id too.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderKey carries the message key.
	HeaderKey = "Kubetx-Key"
	// HeaderTransaction carries <namespace>/<name> of the DistributedTransaction.
	HeaderTransaction = "Kubetx-Transaction"
)

// The fields of an entry in a Redis shard stream, in the order kubetx writes them.
const (
	FieldID          = "id"
	FieldKey         = "key"
	FieldTransaction = "transaction"
	// FieldData is the payload's JSON as a (UTF-8) string.
	FieldData = "data"
)

// DefaultPrefix is the first part of the Redis stream keys.
const DefaultPrefix = "kubetx"

// DefaultShards is the number of Redis shard streams per subject.
const DefaultShards = 128

// MessageID is the id of the message of a transaction's branch:
// "<uid>/<branch>", the deduplication id on both paths.
func MessageID(uid, branch string) string { return uid + "/" + branch }

// Shard is the Redis shard stream a message key goes to: FNV-1a 64 of the
// key's UTF-8 bytes, modulo shards (the operator's redisShard). It is 0 when
// shards is less than 1.
func Shard(key string, shards int) int {
	if shards < 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % uint64(shards))
}

// StreamKey is the key of one shard stream: "<prefix>:<subject>:<shard>".
func StreamKey(prefix, subject string, shard int) string {
	return prefix + ":" + subject + ":" + strconv.Itoa(shard)
}

package broker_test

import (
	"testing"

	"github.com/kubetx/kubetx/sdk/go/broker"
)

// The vectors were computed by the operator's TypeScript code
// (src/brokers/message.ts redisShard / redisStreamKey / messageId, over
// src/controller/sharding/hash-range.ts fnv1a64) with node, so the Go
// consumer and the TypeScript publisher agree on where a key's messages are.
func TestShardMatchesTheOperator(t *testing.T) {
	tests := []struct {
		key               string
		shard128, shard16 int
		stream            string
	}{
		{"a", 12, 12, "kubetx:shop.orders.paid:12"},                // fnv1a64 0xaf63dc4c8601ec8c
		{"order-42", 84, 4, "kubetx:shop.orders.paid:84"},          // 0x7d1deb86a05662d4
		{"customer:7", 42, 10, "kubetx:shop.orders.paid:42"},       // 0x65c988ab83965f2a
		{"ключ-1", 79, 15, "kubetx:shop.orders.paid:79"},           // 0x1387a814e8c57ccf (UTF-8 bytes)
		{"🙂", 75, 11, "kubetx:shop.orders.paid:75"},                // 0xff026b387504e24b
		{"shop.orders.paid", 28, 12, "kubetx:shop.orders.paid:28"}, // 0x9961d150f97ea61c
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := broker.Shard(tt.key, broker.DefaultShards); got != tt.shard128 {
				t.Errorf("Shard(%q, 128) = %d, want %d", tt.key, got, tt.shard128)
			}
			if got := broker.Shard(tt.key, 16); got != tt.shard16 {
				t.Errorf("Shard(%q, 16) = %d, want %d", tt.key, got, tt.shard16)
			}
			if got := broker.StreamKey(broker.DefaultPrefix, "shop.orders.paid", broker.Shard(tt.key, broker.DefaultShards)); got != tt.stream {
				t.Errorf("StreamKey = %q, want %q", got, tt.stream)
			}
		})
	}
	if got := broker.MessageID("0b5c2f6e-uid", "warehouse"); got != "0b5c2f6e-uid/warehouse" {
		t.Errorf("MessageID = %q", got)
	}
}

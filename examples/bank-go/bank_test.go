package main

import (
	"testing"

	"github.com/kubetx/kubetx/sdk/go/participant"
	"google.golang.org/grpc/codes"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    transfer
		invalid bool
	}{
		{name: "ok", payload: `{"account":"a1","amount":100}`, want: transfer{Account: "a1", Amount: 100}},
		{name: "extra fields ignored", payload: `{"account":"a1","amount":1,"note":"x"}`, want: transfer{Account: "a1", Amount: 1}},
		{name: "not JSON", payload: `account=a1`, invalid: true},
		{name: "no account", payload: `{"amount":100}`, invalid: true},
		{name: "zero amount", payload: `{"account":"a1","amount":0}`, invalid: true},
		{name: "negative amount", payload: `{"account":"a1","amount":-5}`, invalid: true},
		{name: "fractional amount", payload: `{"account":"a1","amount":1.5}`, invalid: true},
		{name: "amount as string", payload: `{"account":"a1","amount":"100"}`, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(&participant.Request{Payload: []byte(tt.payload)})
			if tt.invalid {
				if code := participant.Status(err).Code(); code != codes.InvalidArgument {
					t.Fatalf("parse(%s): code %v (err %v), want InvalidArgument", tt.payload, code, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parse(%s) = %+v, %v; want %+v", tt.payload, got, err, tt.want)
			}
		})
	}
}

func TestAmountOf(t *testing.T) {
	tests := []struct {
		name   string
		result string
		want   int64
	}{
		{name: "from Try's data", result: `{"amount":70}`, want: 70},
		{name: "no data: the payload's", result: ``, want: 100},
		{name: "unreadable data: the payload's", result: `oops`, want: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := amountOf(&participant.Request{Result: []byte(tt.result)}, transfer{Account: "a1", Amount: 100}); got != tt.want {
				t.Fatalf("amountOf = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOperation(t *testing.T) {
	tests := []struct {
		name, op, want string
		invalid        bool
	}{
		{name: "TransOut", op: OpTransOut, want: OpTransOut},
		{name: "TransIn", op: OpTransIn, want: OpTransIn},
		{name: "alias", op: "conformance", want: OpTransOut},
		{name: "none", op: "", invalid: true},
		{name: "unknown", op: "Withdraw", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bank{Name: "alpha", Aliases: map[string]string{"conformance": OpTransOut}}
			got, err := b.operation(&participant.Request{Operation: tt.op})
			if tt.invalid {
				if code := participant.Status(err).Code(); code != codes.InvalidArgument {
					t.Fatalf("operation(%q): code %v, want InvalidArgument", tt.op, code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("operation(%q) = %q, %v; want %q", tt.op, got, err, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{name: "minimal", args: []string{"--bank", "alpha", "--database-url", "postgres://x/y"}, ok: true},
		{name: "no bank", args: []string{"--database-url", "postgres://x/y"}},
		{name: "no database", args: []string{"--bank", "alpha"}},
		{name: "fault rate over 1", args: []string{"--bank", "a", "--database-url", "u", "--fault-rate", "1.5"}},
		{name: "unknown flag", args: []string{"--bank", "a", "--database-url", "u", "--default-operation", "Pay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args)
			if (err == nil) != tt.ok {
				t.Fatalf("parseFlags(%v): err %v, want ok=%v", tt.args, err, tt.ok)
			}
		})
	}
}

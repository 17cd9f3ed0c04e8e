package participant_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubetx/kubetx/sdk/go/participant"
)

func TestStatus(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"nil", nil, codes.OK},
		{"refuse", participant.Refuse("no"), codes.Aborted},
		{"refused zero code", &participant.Refused{Message: "no"}, codes.Aborted},
		{"refused other code", &participant.Refused{Message: "no", Code: codes.NotFound}, codes.Aborted},
		{"precondition", &participant.Refused{Message: "no", Code: codes.FailedPrecondition}, codes.FailedPrecondition},
		{"wrapped refusal", fmt.Errorf("a: %w", participant.Refuse("no")), codes.Aborted},
		{"invalid", participant.Invalid("bad %d", 1), codes.InvalidArgument},
		{"status", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted},
		{"wrapped status", fmt.Errorf("x: %w", status.Error(codes.NotFound, "gone")), codes.NotFound},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
		{"canceled", fmt.Errorf("q: %w", context.Canceled), codes.Canceled},
		{"too large", &participant.DataTooLargeError{Bytes: 5000}, codes.Internal},
		{"other", errors.New("boom"), codes.Unavailable},
		{"empty message", errors.New(""), codes.Unavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := participant.Status(c.err)
			if st.Code() != c.code {
				t.Fatalf("code %v, want %v", st.Code(), c.code)
			}
			if c.err != nil && st.Message() == "" {
				t.Fatal("empty status message")
			}
		})
	}
}

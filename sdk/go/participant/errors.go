package participant

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Refused is a definitive business "no", answered as ABORTED (the default)
// or FAILED_PRECONDITION. From Try/Execute it rolls the transaction back;
// from Confirm/Cancel/Compensate/Deliver the operator still retries (those
// must eventually succeed), so refuse there only on protocol violations.
type Refused struct {
	Message string
	// Code is codes.Aborted (also when left zero) or codes.FailedPrecondition;
	// any other value is answered as ABORTED.
	Code codes.Code
}

// Error implements error.
func (r *Refused) Error() string { return "refused: " + r.Message }

// GRPCCode is the status code the refusal is answered with.
func (r *Refused) GRPCCode() codes.Code {
	if r.Code == codes.FailedPrecondition {
		return codes.FailedPrecondition
	}
	return codes.Aborted
}

// Refuse returns a *Refused with code ABORTED and a formatted message.
func Refuse(format string, a ...any) error {
	return &Refused{Message: fmt.Sprintf(format, a...), Code: codes.Aborted}
}

// Invalid returns an INVALID_ARGUMENT status error: the request can never
// succeed (a malformed payload). From Try/Execute the transaction rolls back
// at once; return it only if nothing was reserved or changed. From the other
// methods the operator keeps retrying and marks the transaction Stalled.
func Invalid(format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, format, a...)
}

// DataTooLargeError is returned when a handler's Response.Data exceeds
// MaxDataBytes; it is answered INTERNAL (retried) and nothing is recorded.
type DataTooLargeError struct {
	Bytes int
}

// Error implements error.
func (e *DataTooLargeError) Error() string {
	return fmt.Sprintf("response data is %d bytes, over the %d-byte limit of BranchResponse.data; return a reference (an id) instead of the value", e.Bytes, MaxDataBytes)
}

// CheckData returns a *DataTooLargeError when resp carries more than MaxDataBytes of data.
func CheckData(resp *Response) error {
	if resp != nil && len(resp.Data) > MaxDataBytes {
		return &DataTooLargeError{Bytes: len(resp.Data)}
	}
	return nil
}

// Status is the gRPC status a handler's error is answered with (see the
// package documentation for the table). A nil error is OK.
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	var refused *Refused
	if errors.As(err, &refused) {
		return status.New(refused.GRPCCode(), refused.Message)
	}
	var tooLarge *DataTooLargeError
	if errors.As(err, &tooLarge) {
		return status.New(codes.Internal, tooLarge.Error())
	}
	// A status error, possibly wrapped: its code passes through.
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if s := se.GRPCStatus(); s != nil && s.Code() != codes.OK {
			return status.New(s.Code(), s.Message())
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.New(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		// The caller is gone (or the server is stopping); the operator retries any code but OK.
		return status.New(codes.Canceled, err.Error())
	}
	msg := err.Error()
	if msg == "" {
		msg = "participant error"
	}
	return status.New(codes.Unavailable, msg)
}

// Package participant serves the kubetx participant protocol
// (proto/kubetx/v1/participant.proto) around plain Go handlers.
//
// A participant is a gRPC server the kubetx operator calls: TccParticipant
// (Try, Confirm, Cancel), SagaParticipant (Execute, Compensate),
// MessageReceiver (Deliver) and MessageSource (CheckPrepared, the check-back
// of a reliable message's upstream). Serve listens, registers the services
// whose handlers are set in Options, adds the standard gRPC health service,
// and stops gracefully when its context is done.
//
// The operator reads only the status code of an answer, never its text:
//
//	handler returns                  answered as
//	nil error                        OK (Response.Message, Response.Data)
//	*Refused (Refuse)                ABORTED, or Refused.Code = FAILED_PRECONDITION
//	Invalid                          INVALID_ARGUMENT (a payload that can never succeed)
//	a gRPC status error              passed through unchanged
//	an error wrapping a deadline     DEADLINE_EXCEEDED
//	data over MaxDataBytes           INTERNAL
//	a panic                          INTERNAL (logged; the server stays up)
//	any other error                  UNAVAILABLE: the operator retries the call
//
// From Try and Execute a refusal rolls the transaction back; from Confirm,
// Cancel, Compensate and Deliver every code but OK means "retried", so refuse
// there only on protocol violations (the barrier does).
//
// Calls arrive at least once and out of order. Run the handlers through the
// barrier package (barrier.TCC, barrier.Saga, barrier.Receiver) to get
// idempotency, null compensation and anti-hanging from one table in the
// participant's own database.
package participant

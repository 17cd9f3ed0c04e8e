package participant

import kubetxv1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/v1"

// MaxDataBytes is the largest Response.Data the operator accepts: it keeps the
// data in the transaction's status and hands it back as Request.Result.
const MaxDataBytes = 4096

// Request is one branch call (a BranchRequest). Payload is the user's JSON
// bytes, passed on undecoded.
type Request struct {
	// TransactionUID is metadata.uid of the DistributedTransaction; with
	// Branch and the method it is the idempotency key.
	TransactionUID string
	// Namespace and Name identify the DistributedTransaction.
	Namespace string
	Name      string
	// Branch and Operation come from the branch spec.
	Branch    string
	Operation string
	// Payload is the branch's (or the transaction's) payload: JSON bytes.
	Payload []byte
	// Attempt is 1 for the first call of this method on this branch.
	Attempt uint32
	// Result goes to Confirm, Cancel and Compensate: the Data this branch's
	// Try or Execute returned. It can be empty even when the Try ran (its
	// answer may have been lost), so look reservations up by TransactionUID.
	Result []byte
}

// Response is the answer to a branch call (a BranchResponse).
type Response struct {
	// Message is shown in the transaction's status and Events; keep secrets out of it.
	Message string
	// Data is kept in status and returned as Request.Result; only from Try
	// and Execute, at most MaxDataBytes.
	Data []byte
}

// RequestFromProto converts a BranchRequest.
func RequestFromProto(r *kubetxv1.BranchRequest) *Request {
	return &Request{
		TransactionUID: r.GetTransactionUid(),
		Namespace:      r.GetNamespace(),
		Name:           r.GetName(),
		Branch:         r.GetBranch(),
		Operation:      r.GetOperation(),
		Payload:        r.GetPayload(),
		Attempt:        r.GetAttempt(),
		Result:         r.GetResult(),
	}
}

// Proto converts the request back into a BranchRequest (clients and tests).
func (r *Request) Proto() *kubetxv1.BranchRequest {
	return &kubetxv1.BranchRequest{
		TransactionUid: r.TransactionUID,
		Namespace:      r.Namespace,
		Name:           r.Name,
		Branch:         r.Branch,
		Operation:      r.Operation,
		Payload:        r.Payload,
		Attempt:        r.Attempt,
		Result:         r.Result,
	}
}

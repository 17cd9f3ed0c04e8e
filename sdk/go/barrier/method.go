package barrier

import "fmt"

// Method is the protocol method of a call: the third part of the barrier key.
type Method string

// The methods, spelled as stored in the table's method column.
const (
	Try        Method = "Try"
	Confirm    Method = "Confirm"
	Cancel     Method = "Cancel"
	Execute    Method = "Execute"
	Compensate Method = "Compensate"
	Deliver    Method = "Deliver"
)

func (m Method) valid() bool {
	switch m {
	case Try, Confirm, Cancel, Execute, Compensate, Deliver:
		return true
	}
	return false
}

// forward is the Try/Execute that a Confirm/Cancel/Compensate completes or undoes.
func (m Method) forward() (Method, bool) {
	switch m {
	case Confirm, Cancel:
		return Try, true
	case Compensate:
		return Execute, true
	}
	return "", false
}

// compensation is the method whose blocker fences m out.
func (m Method) compensation() Method {
	if m == Try {
		return Cancel
	}
	return Compensate
}

// Outcome says how Run answered.
type Outcome int

const (
	// Executed: the handler ran now and its response was recorded.
	Executed Outcome = iota
	// Duplicate: a repeat, answered from the stored row; the handler did not run.
	Duplicate
	// NullCompensation: a Cancel/Compensate with no Try/Execute before it; the handler did not run.
	NullCompensation
)

// String names the outcome as the TypeScript SDK does.
func (o Outcome) String() string {
	switch o {
	case Executed:
		return "executed"
	case Duplicate:
		return "duplicate"
	case NullCompensation:
		return "null-compensation"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kubetx/kubetx/sdk/go/barrier"
	"github.com/kubetx/kubetx/sdk/go/participant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The operations a branch names in spec.branches[].operation.
const (
	OpTransOut = "TransOut"
	OpTransIn  = "TransIn"
)

// schema is created at start-up. Every statement is idempotent, and the whole
// script runs under a transaction-scoped advisory lock, so two processes
// starting at once against one database do not race on CREATE TABLE (which
// IF NOT EXISTS alone does not prevent in PostgreSQL).
const schema = `
CREATE TABLE IF NOT EXISTS accounts (
  id      text PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0),
  held    bigint NOT NULL DEFAULT 0 CHECK (held >= 0)
);
-- TCC TransIn: a credit announced by Try, applied by Confirm, dropped by Cancel.
CREATE TABLE IF NOT EXISTS pending_credits (
  uid     text NOT NULL,
  branch  text NOT NULL,
  account text NOT NULL REFERENCES accounts (id),
  amount  bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (uid, branch)
);
-- Audit: one row each time a handler's business effect commits. No key on
-- purpose: a duplicate effect would show up as a second row.
CREATE TABLE IF NOT EXISTS applied (
  seq        bigserial PRIMARY KEY,
  uid        text NOT NULL,
  branch     text NOT NULL,
  method     text NOT NULL,
  operation  text NOT NULL,
  account    text NOT NULL,
  amount     bigint NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
`

// schemaLock is the advisory lock key of the schema script (any constant).
const schemaLock = 0x6b75626574780001

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
		return fmt.Errorf("schema lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return tx.Commit()
}

// transfer is the payload of both operations.
type transfer struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

// reservation is what Try/Execute return in data, handed back as Result.
type reservation struct {
	Amount int64 `json:"amount"`
}

func parse(r *participant.Request) (transfer, error) {
	var t transfer
	if err := json.Unmarshal(r.Payload, &t); err != nil {
		return t, participant.Invalid("payload: want {\"account\": string, \"amount\": integer}: %v", err)
	}
	if t.Account == "" {
		return t, participant.Invalid("payload: account is missing")
	}
	if t.Amount <= 0 {
		return t, participant.Invalid("payload: amount must be a positive integer, got %d", t.Amount)
	}
	return t, nil
}

// amountOf is the amount a Confirm/Cancel/Compensate acts on: what its
// Try/Execute recorded in data, else the payload's (the payload is immutable,
// so both agree; Result is preferred as the record of what really happened).
func amountOf(r *participant.Request, t transfer) int64 {
	var res reservation
	if len(r.Result) > 0 && json.Unmarshal(r.Result, &res) == nil && res.Amount > 0 {
		return res.Amount
	}
	return t.Amount
}

func reply(msg string, amount int64) (*participant.Response, error) {
	data, err := json.Marshal(reservation{Amount: amount})
	if err != nil {
		return nil, err
	}
	return &participant.Response{Message: msg, Data: data}, nil
}

// Bank implements the TransOut/TransIn operations of one bank on its own
// database, as TCC (barrier.TxTCC) and as Saga (barrier.TxSaga). The barrier
// runs each method at most once per (uid, branch, method), in the *sql.Tx it
// passes, and answers null compensations and hanging Trys without calling it.
type Bank struct {
	// Name of the bank, shown in messages.
	Name string
	// Aliases maps other operation names onto TransOut or TransIn, e.g. the
	// conformance kit's "conformance" onto TransOut (its semantics, hook.proto).
	Aliases map[string]string
}

var (
	_ barrier.TxTCC  = (*Bank)(nil)
	_ barrier.TxSaga = (*Bank)(nil)
)

func (b *Bank) operation(r *participant.Request) (string, error) {
	op := r.Operation
	if alias, ok := b.Aliases[op]; ok {
		op = alias
	}
	if op != OpTransOut && op != OpTransIn {
		return "", participant.Invalid("unknown operation %q (want %s or %s)", r.Operation, OpTransOut, OpTransIn)
	}
	return op, nil
}

// call parses the request and hands the operation and payload to fn.
func (b *Bank) call(r *participant.Request, fn func(op string, t transfer) (*participant.Response, error)) (*participant.Response, error) {
	op, err := b.operation(r)
	if err != nil {
		return nil, err
	}
	t, err := parse(r)
	if err != nil {
		return nil, err
	}
	return fn(op, t)
}

// Try: TransOut holds the amount (refused on insufficient funds); TransIn
// records a pending credit (refused only for an unknown account).
func (b *Bank) Try(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return b.call(r, func(op string, t transfer) (*participant.Response, error) {
		switch op {
		case OpTransOut:
			n, err := execRows(ctx, tx, `UPDATE accounts SET held = held + $2 WHERE id = $1 AND balance - held >= $2`, t.Account, t.Amount)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, b.refusal(ctx, tx, t)
			}
			if err := audit(ctx, tx, r, "Try", op, t.Account, t.Amount); err != nil {
				return nil, err
			}
			return reply(fmt.Sprintf("%s: held %d on %s", b.Name, t.Amount, t.Account), t.Amount)
		default:
			if err := b.mustExist(ctx, tx, t.Account); err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO pending_credits (uid, branch, account, amount) VALUES ($1, $2, $3, $4)`,
				r.TransactionUID, r.Branch, t.Account, t.Amount); err != nil {
				return nil, err
			}
			if err := audit(ctx, tx, r, "Try", op, t.Account, t.Amount); err != nil {
				return nil, err
			}
			return reply(fmt.Sprintf("%s: credit of %d to %s pending", b.Name, t.Amount, t.Account), t.Amount)
		}
	})
}

// Confirm: TransOut debits the held amount; TransIn applies the pending credit.
func (b *Bank) Confirm(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return b.call(r, func(op string, t transfer) (*participant.Response, error) {
		amount := amountOf(r, t)
		switch op {
		case OpTransOut:
			if err := execOne(ctx, tx, `UPDATE accounts SET balance = balance - $2, held = held - $2 WHERE id = $1`, t.Account, amount); err != nil {
				return nil, err
			}
			if err := audit(ctx, tx, r, "Confirm", op, t.Account, amount); err != nil {
				return nil, err
			}
			return &participant.Response{Message: fmt.Sprintf("%s: debited %d from %s", b.Name, amount, t.Account)}, nil
		default:
			var account string
			if err := tx.QueryRowContext(ctx, `DELETE FROM pending_credits WHERE uid = $1 AND branch = $2 RETURNING account, amount`,
				r.TransactionUID, r.Branch).Scan(&account, &amount); err != nil {
				// The barrier lets Confirm through only after a Try that took effect.
				return nil, fmt.Errorf("no pending credit for this branch: %w", err)
			}
			if err := execOne(ctx, tx, `UPDATE accounts SET balance = balance + $2 WHERE id = $1`, account, amount); err != nil {
				return nil, err
			}
			if err := audit(ctx, tx, r, "Confirm", op, account, amount); err != nil {
				return nil, err
			}
			return &participant.Response{Message: fmt.Sprintf("%s: credited %d to %s", b.Name, amount, account)}, nil
		}
	})
}

// Cancel: TransOut releases the hold; TransIn drops the pending credit. The
// barrier calls it only when the Try took effect (otherwise it answers the
// null compensation itself).
func (b *Bank) Cancel(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return b.call(r, func(op string, t transfer) (*participant.Response, error) {
		amount := amountOf(r, t)
		switch op {
		case OpTransOut:
			if err := execOne(ctx, tx, `UPDATE accounts SET held = held - $2 WHERE id = $1`, t.Account, amount); err != nil {
				return nil, err
			}
		default:
			if _, err := tx.ExecContext(ctx, `DELETE FROM pending_credits WHERE uid = $1 AND branch = $2`, r.TransactionUID, r.Branch); err != nil {
				return nil, err
			}
		}
		if err := audit(ctx, tx, r, "Cancel", op, t.Account, amount); err != nil {
			return nil, err
		}
		return &participant.Response{Message: fmt.Sprintf("%s: %s of %d on %s cancelled", b.Name, op, amount, t.Account)}, nil
	})
}

// Execute: TransOut debits (refused on insufficient funds); TransIn credits
// (refused only for an unknown account).
func (b *Bank) Execute(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return b.call(r, func(op string, t transfer) (*participant.Response, error) {
		switch op {
		case OpTransOut:
			n, err := execRows(ctx, tx, `UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance - held >= $2`, t.Account, t.Amount)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, b.refusal(ctx, tx, t)
			}
		default:
			n, err := execRows(ctx, tx, `UPDATE accounts SET balance = balance + $2 WHERE id = $1`, t.Account, t.Amount)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, participant.Refuse("%s: no account %q", b.Name, t.Account)
			}
		}
		if err := audit(ctx, tx, r, "Execute", op, t.Account, t.Amount); err != nil {
			return nil, err
		}
		verb := map[string]string{OpTransOut: "debited", OpTransIn: "credited"}[op]
		return reply(fmt.Sprintf("%s: %s %d on %s", b.Name, verb, t.Amount, t.Account), t.Amount)
	})
}

// errCreditSpent is the one way a compensation can fail: TransIn's credit was
// spent before the Saga rolled back. It is retryable (UNAVAILABLE), so the
// transaction stays Compensating, visibly, until the account is funded again;
// the balance never goes negative and no money is made up.
var errCreditSpent = status.Error(codes.Unavailable, "the credit to undo has already been spent; retrying until the account is funded")

// Compensate: TransOut credits the amount back; TransIn debits its credit
// back. The barrier calls it only when the Execute took effect.
func (b *Bank) Compensate(ctx context.Context, tx *sql.Tx, r *participant.Request) (*participant.Response, error) {
	return b.call(r, func(op string, t transfer) (*participant.Response, error) {
		amount := amountOf(r, t)
		switch op {
		case OpTransOut:
			if err := execOne(ctx, tx, `UPDATE accounts SET balance = balance + $2 WHERE id = $1`, t.Account, amount); err != nil {
				return nil, err
			}
		default:
			n, err := execRows(ctx, tx, `UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance - held >= $2`, t.Account, amount)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, errCreditSpent
			}
		}
		if err := audit(ctx, tx, r, "Compensate", op, t.Account, amount); err != nil {
			return nil, err
		}
		return &participant.Response{Message: fmt.Sprintf("%s: %s of %d on %s compensated", b.Name, op, amount, t.Account)}, nil
	})
}

// refusal tells an unknown account from insufficient funds.
func (b *Bank) refusal(ctx context.Context, tx *sql.Tx, t transfer) error {
	if err := b.mustExist(ctx, tx, t.Account); err != nil {
		return err
	}
	return participant.Refuse("%s: insufficient funds on %s for %d", b.Name, t.Account, t.Amount)
}

func (b *Bank) mustExist(ctx context.Context, tx *sql.Tx, account string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, account).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return participant.Refuse("%s: no account %q", b.Name, account)
	}
	return err
}

func audit(ctx context.Context, tx *sql.Tx, r *participant.Request, method, op, account string, amount int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO applied (uid, branch, method, operation, account, amount) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.TransactionUID, r.Branch, method, op, account, amount)
	return err
}

func execRows(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs an UPDATE that must change exactly one row (a retryable error otherwise).
func execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	n, err := execRows(ctx, tx, query, args...)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("expected to update one account, updated %d", n)
	}
	return nil
}

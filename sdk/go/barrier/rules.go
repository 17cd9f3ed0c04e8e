package barrier

import (
	"context"
	"database/sql"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/kubetx/kubetx/sdk/go/participant"
)

const codesFailedPrecondition = codes.FailedPrecondition

// apply is the barrier rules (see the package documentation) inside tx.
// The own method's key is always claimed first; see "Concurrency".
func (b *Barrier) apply(ctx context.Context, tx *sql.Tx, method Method, r *participant.Request, h Handler) (*participant.Response, Outcome, error) {
	k := key{uid: r.TransactionUID, branch: r.Branch}
	own, err := b.claim(ctx, tx, k, method)
	if err != nil {
		return nil, 0, err
	}
	if own != nil {
		if own.Origin == "blocker" {
			return nil, 0, &participant.Refused{
				Message: fmt.Sprintf("%s arrived after its %s (anti-hanging): refused", method, method.compensation()),
				Code:    codes.Aborted,
			}
		}
		return &participant.Response{Message: own.Message, Data: own.Data}, Duplicate, nil
	}

	switch method {
	case Cancel, Compensate:
		fwd, _ := method.forward()
		row, err := b.read(ctx, tx, k, fwd, true)
		if err != nil {
			return nil, 0, err
		}
		if row == nil {
			resp := &participant.Response{Message: fmt.Sprintf("null compensation: no %s had arrived, nothing to undo", fwd), Data: []byte{}}
			// Waits on an in-flight Try/Execute's uncommitted row, if any.
			inserted, err := b.insert(ctx, tx, k, fwd, "blocker", &participant.Response{Data: []byte{}})
			if err != nil {
				return nil, 0, err
			}
			if inserted {
				if err := b.fill(ctx, tx, k, method, resp); err != nil {
					return nil, 0, err
				}
				return resp, NullCompensation, nil
			}
			// The Try/Execute was in flight and has committed meanwhile: an
			// ordinary compensation.
			if row, err = b.read(ctx, tx, k, fwd, true); err != nil {
				return nil, 0, err
			}
			if row == nil {
				return nil, 0, fmt.Errorf("barrier: the %s row of %s/%s changed concurrently; try again", fwd, k.uid, k.branch)
			}
		}
		if method == Cancel {
			confirm, err := b.read(ctx, tx, k, Confirm, true)
			if err != nil {
				return nil, 0, err
			}
			if confirm != nil {
				return nil, 0, &participant.Refused{Message: "Cancel after Confirm: protocol violation", Code: codes.FailedPrecondition}
			}
		}
	case Confirm:
		try, err := b.read(ctx, tx, k, Try, true)
		if err != nil {
			return nil, 0, err
		}
		if try == nil || try.Origin != "call" {
			return nil, 0, &participant.Refused{Message: "Confirm without a successful Try: protocol violation", Code: codes.FailedPrecondition}
		}
		cancel, err := b.read(ctx, tx, k, Cancel, true)
		if err != nil {
			return nil, 0, err
		}
		if cancel != nil {
			return nil, 0, &participant.Refused{Message: "Confirm after Cancel: protocol violation", Code: codes.FailedPrecondition}
		}
	}

	resp, err := h(ctx, tx, r)
	if err != nil {
		return nil, 0, err // unchanged: its status code is the handler's answer
	}
	if resp == nil {
		resp = &participant.Response{}
	}
	if err := participant.CheckData(resp); err != nil {
		return nil, 0, err
	}
	if resp.Data == nil {
		resp = &participant.Response{Message: resp.Message, Data: []byte{}}
	}
	if err := b.fill(ctx, tx, k, method, resp); err != nil {
		return nil, 0, err
	}
	return resp, Executed, nil
}

type key struct{ uid, branch string }

// claim inserts the placeholder row for the own method. It returns nil when
// the key was free (now taken: an identical concurrent call waits on it), or
// the committed row that was already there.
func (b *Barrier) claim(ctx context.Context, tx *sql.Tx, k key, method Method) (*Row, error) {
	res, err := tx.ExecContext(ctx, b.sql.claim, k.uid, k.branch, string(method), b.cfg.NowMillis())
	if err != nil {
		return nil, fmt.Errorf("barrier: claim %s/%s/%s: %w", k.uid, k.branch, method, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("barrier: claim %s/%s/%s: %w", k.uid, k.branch, method, err)
	}
	if n == 1 {
		return nil, nil
	}
	// Conflict: the row is committed (possibly by a call we just waited for);
	// a new statement reads it under READ COMMITTED.
	row, err := b.read(ctx, tx, k, method, false)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, fmt.Errorf("barrier: the %s row of %s/%s changed concurrently; try again", method, k.uid, k.branch)
	}
	return row, nil
}

func (b *Barrier) read(ctx context.Context, tx *sql.Tx, k key, method Method, lock bool) (*Row, error) {
	q := b.sql.selectRow
	if lock {
		// Confirm and Cancel both lock the Try row first, so they serialize.
		q = b.sql.selectForUpdate
	}
	row, err := scanRow(tx.QueryRowContext(ctx, q, k.uid, k.branch, string(method)))
	if err != nil {
		return nil, fmt.Errorf("barrier: read %s/%s/%s: %w", k.uid, k.branch, method, err)
	}
	return row, nil
}

// insert adds a row unless one exists; it reports whether it did.
func (b *Barrier) insert(ctx context.Context, tx *sql.Tx, k key, method Method, origin string, resp *participant.Response) (bool, error) {
	res, err := tx.ExecContext(ctx, b.sql.insert, k.uid, k.branch, string(method), origin, b.cfg.NowMillis(), resp.Message, resp.Data)
	if err != nil {
		return false, fmt.Errorf("barrier: insert %s %s/%s/%s: %w", origin, k.uid, k.branch, method, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("barrier: insert %s %s/%s/%s: %w", origin, k.uid, k.branch, method, err)
	}
	return n == 1, nil
}

// fill records the response in the row claimed for the own method.
func (b *Barrier) fill(ctx context.Context, tx *sql.Tx, k key, method Method, resp *participant.Response) error {
	// MySQL counts changed rows only, so RowsAffected is not checked: the
	// row is ours, claimed and locked by this transaction.
	if _, err := tx.ExecContext(ctx, b.sql.fill, "call", b.cfg.NowMillis(), resp.Message, resp.Data, k.uid, k.branch, string(method)); err != nil {
		return fmt.Errorf("barrier: record %s/%s/%s: %w", k.uid, k.branch, method, err)
	}
	return nil
}

// checkMySQLKey refuses keys longer than the MySQL columns: INSERT IGNORE
// would truncate them silently and two keys could collide.
func checkMySQLKey(r *participant.Request, method Method) error {
	if n := utf8.RuneCountInString(r.TransactionUID); n > 64 {
		return participant.Invalid("transaction_uid is %d characters, over the barrier table's 64", n)
	}
	if n := utf8.RuneCountInString(r.Branch); n > 63 {
		return participant.Invalid("branch is %d characters, over the barrier table's 63", n)
	}
	_ = method // at most 10 characters, validated by Method.valid
	return nil
}

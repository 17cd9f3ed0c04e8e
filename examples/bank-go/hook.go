package main

import (
	"context"
	"database/sql"
	"errors"

	conformancev1 "github.com/kubetx/kubetx/sdk/go/gen/kubetx/conformance/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// conformanceOperation is the operation the conformance kit sends.
const conformanceOperation = "conformance"

// hook is the conformance kit's test hook (proto/kubetx/conformance/v1/hook.proto)
// on the accounts table. Served only with --conformance-hook: it opens
// accounts and sets balances, which no production bank should let a caller do.
type hook struct {
	conformancev1.UnimplementedConformanceHookServer
	db *sql.DB
}

func (h *hook) OpenAccount(ctx context.Context, req *conformancev1.OpenAccountRequest) (*conformancev1.OpenAccountResponse, error) {
	if req.GetAccount() == "" || req.GetBalance() < 0 {
		return nil, status.Error(codes.InvalidArgument, "account must be named and balance must not be negative")
	}
	if _, err := h.db.ExecContext(ctx, `INSERT INTO accounts (id, balance, held) VALUES ($1, $2, 0)
		ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance, held = 0`, req.GetAccount(), req.GetBalance()); err != nil {
		return nil, status.Errorf(codes.Unavailable, "open account: %v", err)
	}
	return &conformancev1.OpenAccountResponse{}, nil
}

func (h *hook) ReadAccount(ctx context.Context, req *conformancev1.ReadAccountRequest) (*conformancev1.ReadAccountResponse, error) {
	var resp conformancev1.ReadAccountResponse
	err := h.db.QueryRowContext(ctx, `SELECT balance, held FROM accounts WHERE id = $1`, req.GetAccount()).Scan(&resp.Balance, &resp.Held)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return &conformancev1.ReadAccountResponse{}, nil
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "read account: %v", err)
	}
	resp.Found = true
	return &resp, nil
}

// PrepareMessage stays UNIMPLEMENTED (from the embedded type): the bank is not
// a message source.

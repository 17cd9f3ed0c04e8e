// Package barrier is the sub-transaction barrier (after dtm's): exactly-once
// effects for branch calls that arrive at least once and out of order.
//
// Every call is keyed by (transaction uid, branch, method). A row with that
// key is written in the participant's own database transaction together with
// the handler's effect: both commit, or neither does. The rules, the same as
// the TypeScript SDK's (src/sdk/barrier.ts):
//
//  1. Repeated call: a row for the key exists → answer OK with the stored
//     message and data; the handler does not run (Duplicate).
//  2. Null compensation: Cancel/Compensate with no Try/Execute row → insert
//     a 'blocker' row for the Try/Execute and a row for itself, answer OK; the
//     handler does not run (NullCompensation).
//  3. Anti-hanging: Try/Execute finding a 'blocker' row (its Cancel or
//     Compensate came first) → Refused (ABORTED); the handler does not run.
//  4. Protocol violations: Confirm needs a Try row of origin 'call' and no
//     Cancel row; Cancel needs no Confirm row → Refused (FAILED_PRECONDITION).
//  5. Failure: if the handler returns an error (a refusal included) or
//     panics, everything is rolled back and nothing is recorded.
//  6. Deliver is deduplicated only (rule 1).
//
// The table (kubetx_barrier by default) is the TypeScript SDK's, so services
// in several languages can share one database:
//
//	uid, branch, method    primary key
//	origin                 'call' | 'blocker'
//	created_at             bigint, ms since the epoch (for Cleanup)
//	message, data          the stored response
//
// # Concurrency
//
// Every call's first statement claims its key: an INSERT of a placeholder
// row that does nothing on conflict (PostgreSQL ON CONFLICT DO NOTHING, MySQL
// INSERT IGNORE, SQLite ON CONFLICT DO NOTHING). An identical concurrent call
// waits on that row's lock until the first transaction ends, then is answered
// from the committed row (rule 1) or, if the first rolled back, runs itself.
//
// Try racing its Cancel: Cancel locks and reads the Try row (SELECT … FOR
// UPDATE); not finding it, it inserts the Try blocker, which waits on an
// in-flight Try's uncommitted row: the Try commits → the insert conflicts,
// Cancel re-reads the Try row and compensates; the Try rolls back → the
// blocker goes in (null compensation). A Try arriving while a Cancel's blocker
// is uncommitted waits on it and is then refused. Confirm and Cancel both lock
// the Try row before looking for each other, so they serialize too. On
// PostgreSQL and MySQL/MariaDB (InnoDB) the barrier's own transactions run at
// READ COMMITTED; SQLite serializes writers (one write transaction at a time,
// even across processes on one file), so there the rules run trivially one
// call after another.
//
// Lock timeouts, deadlocks and serialization failures are returned as plain
// errors, which participant answers UNAVAILABLE: the operator retries.
package barrier

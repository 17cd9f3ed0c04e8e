/**
 * The sub-transaction barrier (after dtm's) on JDBC: exactly-once effects for branch calls that
 * arrive at least once and out of order.
 *
 * <p>Every call is keyed by (transaction uid, branch, method). A row with that key is written in
 * the participant's own database transaction together with the handler's effect: both commit, or
 * neither does. The rules, the same as the TypeScript and Go SDKs':
 *
 * <ol>
 *   <li>Repeated call: a row for the key exists → answer OK with the stored message and data; the
 *       handler does not run ({@link io.kubetx.barrier.Outcome#DUPLICATE}).
 *   <li>Null compensation: Cancel/Compensate with no Try/Execute row → insert a 'blocker' row for
 *       the Try/Execute and a row for itself, answer OK; the handler does not run ({@link
 *       io.kubetx.barrier.Outcome#NULL_COMPENSATION}).
 *   <li>Anti-hanging: Try/Execute finding a 'blocker' row (its Cancel or Compensate came first) →
 *       refused (ABORTED); the handler does not run.
 *   <li>Protocol violations: Confirm needs a Try row of origin 'call' and no Cancel row; Cancel
 *       needs no Confirm row → refused (FAILED_PRECONDITION).
 *   <li>Failure: if the handler throws (a refusal included), everything is rolled back and nothing
 *       is recorded.
 *   <li>Deliver is deduplicated only (rule 1).
 * </ol>
 *
 * <p>The table ({@code kubetx_barrier}) is the TypeScript and Go SDKs': uid, branch, method
 * (primary key), origin ('call' | 'blocker'), created_at (bigint, ms since the epoch), message,
 * data. Services in several languages can share one database.
 *
 * <h2>Concurrency</h2>
 *
 * <p>Every call's first statement claims its key: an INSERT of a placeholder row that does nothing
 * on conflict (PostgreSQL {@code ON CONFLICT DO NOTHING}, MySQL {@code INSERT IGNORE}). An
 * identical concurrent call waits on that row's lock until the first transaction ends, then is
 * answered from the committed row (rule 1) or, if the first rolled back, runs itself.
 *
 * <p>Try racing its Cancel: Cancel locks and reads the Try row ({@code SELECT … FOR UPDATE}); not
 * finding it, it inserts the Try blocker, which waits on an in-flight Try's uncommitted row: the
 * Try commits → the insert conflicts, Cancel re-reads the Try row and compensates; the Try rolls
 * back → the blocker goes in (null compensation). A Try arriving while a Cancel's blocker is
 * uncommitted waits on it and is then refused. Confirm and Cancel both lock the Try row before
 * looking for each other, so they serialize too. The barrier's own transactions run at READ
 * COMMITTED on both databases.
 *
 * <p>Lock timeouts, deadlocks and serialization failures surface as {@link java.sql.SQLException}s,
 * which the server answers UNAVAILABLE: the operator retries.
 */
package io.kubetx.barrier;

// Package message is the upstream side of a reliable message (mode:
// Message): the service whose local transaction decides whether the message
// is sent, and its check-back server.
//
// The order of steps, and why each is safe if the process dies right after it:
//
//  1. Create the DistributedTransaction with spec.mode: Message and no
//     spec.message.decision (client-go's dynamic client, or kubectl). Dies
//     here → no outbox row; the operator's check-back gets ROLLED_BACK.
//  2. Outbox.RunLocal runs the business change and inserts the outbox row
//     (state 'committed') in one local transaction, keyed by the object's
//     metadata.uid. Dies before its commit → as in 1; after → the
//     check-back gets COMMITTED and the message is delivered.
//  3. Set spec.message.decision: Commit (a merge patch; set once). The
//     message is delivered without waiting for checkAfter. If this fails,
//     nothing is lost: the check-back finds the row.
//
// The check-back rule "absent row = rolled back" is made race-free by a
// claim: CheckPrepared, finding no row, inserts it as 'rolled_back' in its
// own short transaction, so a local transaction still running can no longer
// commit — its own insert conflicts and RunLocal fails with ErrRolledBack,
// rolling the business change back. Whichever insert comes first decides.
//
// The table, kubetx_prepared_messages (uid primary key, namespace, name,
// state 'committed' | 'rolled_back', created_at ms), is the TypeScript SDK's.
package message

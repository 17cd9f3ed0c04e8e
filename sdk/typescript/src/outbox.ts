/**
 * The reliable-message outbox contract, shared by SqliteOutbox
 * (`@kubetx/participant/sqlite`), PgOutbox (`@kubetx/participant/pg`) and the
 * upstream helper prepareMessage (`@kubetx/participant/message`, which has
 * the whole protocol). Nothing here needs a database driver or the
 * Kubernetes client.
 */
import type { PreparedState, SourceHandlers } from './serve.js';

/** Identifies a prepared message: the DistributedTransaction's uid, namespace and name. */
export interface MessageKey {
  uid: string;
  namespace: string;
  name: string;
}

/** A row of the outbox table: 'committed' by runLocal, or 'rolled_back' claimed by a check-back that found no row. */
export type OutboxState = 'committed' | 'rolled_back';

export const DEFAULT_OUTBOX_TABLE = 'kubetx_prepared_messages';
/** Default age for an outbox's `cleanup`: 7 days. */
export const DEFAULT_OUTBOX_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * The upstream's local message table. `Conn` is what the local transaction's
 * function receives (the better-sqlite3 Database, a pg PoolClient, ...).
 */
export interface MessageOutbox<Conn> {
  /**
   * Runs `fn` in one local transaction that also inserts the outbox row
   * (state 'committed'). Throws MessageRolledBack, without running `fn`, when a
   * check-back already claimed the message as rolled back; rethrows whatever
   * `fn` throws after rolling back.
   */
  runLocal<T>(key: MessageKey, fn: (conn: Conn) => T | Promise<T>): Promise<T>;
  /** The check-back's answer: COMMITTED if the row says so; otherwise claims the message rolled back (see above). */
  resolve(key: MessageKey): Promise<'COMMITTED' | 'ROLLED_BACK'>;
  /** The row's state, without claiming anything (inspection and tests). */
  state(uid: string): Promise<OutboxState | undefined>;
}

/** The message was rolled back: by a check-back that found no outbox row, or by the operator. */
export class MessageRolledBack extends Error {
  override readonly name = 'MessageRolledBack';
  constructor(message: string) {
    super(message);
  }
}

/** A check-back server (`serveParticipant({ source })`) that answers from the outbox table. */
export function checkPreparedFromOutbox<Conn>(outbox: MessageOutbox<Conn>): SourceHandlers {
  return {
    checkPrepared: async (ctx): Promise<PreparedState> => {
      if (!ctx.uid) throw new Error('CheckPrepared without a transaction_uid');
      return outbox.resolve({ uid: ctx.uid, namespace: ctx.namespace, name: ctx.name });
    },
  };
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

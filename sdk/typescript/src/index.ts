/**
 * kubetx participant SDK (`@kubetx/participant`): the gRPC server, the
 * errors, the barrier rules and the outbox contract. The stores are separate
 * entry points, so a program only sees the driver it uses:
 *
 *   @kubetx/participant/sqlite   SqliteBarrier, SqliteOutbox (better-sqlite3)
 *   @kubetx/participant/pg       PgBarrier, PgOutbox (pg)
 *   @kubetx/participant/message  prepareMessage, the reliable-message upstream (@kubernetes/client-node)
 *   @kubetx/participant/broker   subscribe, the consumer of broker deliveries (NATS JetStream, ioredis)
 *
 *   import { serveParticipant, Refused } from '@kubetx/participant';
 *   import { SqliteBarrier } from '@kubetx/participant/sqlite';
 *
 *   const db = new Database('inventory.db');
 *   await serveParticipant({
 *     address: '0.0.0.0:50051',
 *     barrier: new SqliteBarrier(db),
 *     tcc: {
 *       try: (ctx) => { ...ctx.tx.prepare(...).run(...); return { data: { reservationId } }; },
 *       confirm: (ctx) => { ... },
 *       cancel: (ctx) => { ... },
 *     },
 *     handleSignals: true,
 *   });
 *
 * With SqliteBarrier the handlers must be plain (non-async) functions that
 * write through `ctx.tx`: better-sqlite3 transactions cannot span an await.
 * Put asynchronous work in `middleware` (it runs outside the barrier).
 * With PgBarrier (PostgreSQL, `pg`) handlers may be async and get the
 * transaction's `PoolClient` as `ctx.tx`: `new PgBarrier(new pg.Pool(...))`.
 * Errors: throw `Refused` for a business "no" (ABORTED), `InvalidPayload` for a
 * malformed request (INVALID_ARGUMENT); anything else is
 * retried by the operator (UNAVAILABLE); data over 4 KiB is INTERNAL.
 */
export {
  serveParticipant,
  normalizeResponse,
  type BranchContext,
  type BranchHandler,
  type BranchMethod,
  type CallResult,
  type CheckPreparedContext,
  type HandlerResponse,
  type Middleware,
  type Participant,
  type PreparedState,
  type ReceiverHandlers,
  type ResponseData,
  type SagaHandlers,
  type ServeOptions,
  type SourceHandlers,
  type TccHandlers,
} from './serve.js';
export { Refused, InvalidPayload, DataTooLarge, MAX_DATA_BYTES, isRefused, statusOf, type RefusalCode } from './errors.js';
export {
  applyBarrierRules,
  applyBarrierRulesAsync,
  forwardOf,
  BARRIER_METHODS,
  type AsyncBarrierStore,
  type Barrier,
  type BarrierKey,
  type BarrierMethod,
  type BarrierOutcome,
  type BarrierResponse,
  type BarrierResult,
  type BarrierRow,
  type BarrierStore,
} from './barrier.js';
export { DEFAULT_BARRIER_TABLE, DEFAULT_BARRIER_RETENTION_MS } from './barrier.js';
export {
  checkPreparedFromOutbox,
  MessageRolledBack,
  DEFAULT_OUTBOX_TABLE,
  DEFAULT_OUTBOX_RETENTION_MS,
  type MessageKey,
  type MessageOutbox,
  type OutboxState,
} from './outbox.js';
export { jsonLogger, type JsonLoggerOptions, type LogFn, type Logger, type LogLevel } from './log.js';
export { addConformanceHook, serveConformanceHook, sqliteHookAccounts, type ConformanceHookHandlers, type HookAccount, type HookPrepareMessage, type SqliteHookAccounts } from './conformance-hook.js';

/**
 * `@kubetx/participant/pg`: the barrier and the message outbox on PostgreSQL
 * through node-postgres (`pg`, an optional peer dependency: install it, and
 * @types/pg for TypeScript, to use this entry point).
 */
export { PgBarrier, type PgBarrierOptions } from './pg-barrier.js';
export { PgOutbox, type PgOutboxOptions } from './outbox-pg.js';

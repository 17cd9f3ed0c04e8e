/**
 * serveParticipant: a gRPC server for the kubetx participant protocol
 * (proto/kubetx/v1/participant.proto) around plain handler functions.
 *
 *   - Each call becomes a typed context (payload parsed as JSON) for the handler.
 *   - With a `barrier`, the handler runs inside it (idempotency, null
 *     compensation, anti-hanging; see barrier.ts) and gets its DB handle as `ctx.tx`.
 *   - Errors map to statuses (errors.ts): Refused → ABORTED/FAILED_PRECONDITION,
 *     data over 4 KiB → INTERNAL, anything else → UNAVAILABLE (retried).
 *   - One log line per call with its identity, attempt and outcome; payloads are never logged.
 *   - The operator's trace context (gRPC metadata `traceparent`) is `ctx.traceparent`;
 *     with an OpenTelemetry SDK registered, each call runs in a SERVER span (trace.ts).
 *   - shutdown() drains in-flight calls, forcing after a grace period;
 *     `handleSignals` does that on SIGTERM/SIGINT and then exits.
 */
import * as grpc from '@grpc/grpc-js';
import {
  type BranchRequest,
  type BranchResponse,
  type CheckPreparedRequest,
  type CheckPreparedResponse,
  CheckPreparedResponse_State,
  MessageReceiverService,
  MessageSourceService,
  SagaParticipantService,
  TccParticipantService,
} from './gen/kubetx/v1/participant.js';
import type { Barrier, BarrierMethod, BarrierOutcome, BarrierResponse, BarrierResult } from './barrier.js';
import { DataTooLarge, InvalidPayload, MAX_DATA_BYTES, Refused, statusOf } from './errors.js';
import { jsonLogger, type Logger } from './log.js';
import { loadTracing, traceparentOf, withServerSpan } from './trace.js';

export type BranchMethod = BarrierMethod;

/** What a handler learns about the call. `Tx` is the barrier's DB handle (undefined without a barrier). */
export interface BranchContext<Tx = undefined> {
  /** metadata.uid of the transaction; with branch and method, the idempotency key. */
  readonly uid: string;
  readonly namespace: string;
  /** metadata.name of the transaction. */
  readonly name: string;
  readonly branch: string;
  readonly operation: string;
  readonly method: BranchMethod;
  /** The payload parsed as JSON; undefined when empty. Reading it throws Refused if it is not JSON. */
  readonly payload: unknown;
  readonly rawPayload: Buffer;
  /** 1 for the first call of this method on this branch. */
  readonly attempt: number;
  /** Confirm/Cancel/Compensate: what this branch's Try/Execute returned in `data`. */
  readonly result: Buffer;
  /** The barrier's transaction handle; write through it so the effect commits with the barrier row. */
  tx: Tx;
  /** Aborted when the caller gives up (deadline, cancellation) or the server is forced down. */
  readonly signal: AbortSignal;
  readonly deadline: Date | undefined;
  /** Logger bound to this call's identity. */
  readonly logger: Logger;
  /**
   * The operator's W3C trace context for this call (gRPC metadata `traceparent`,
   * validated), sent when the operator's tracing is on; undefined otherwise.
   */
  readonly traceparent: string | undefined;
}

/** `data` may be bytes, a string (UTF-8) or any other value (JSON-encoded). At most 4 KiB once encoded. */
export type ResponseData = Buffer | Uint8Array | string | object;

export interface HandlerResponse {
  message?: string;
  data?: ResponseData | null;
}

export type BranchHandler<Tx = undefined> = (
  ctx: BranchContext<Tx>,
) => HandlerResponse | void | Promise<HandlerResponse | void>;

export interface TccHandlers<Tx = undefined> {
  try: BranchHandler<Tx>;
  confirm: BranchHandler<Tx>;
  cancel: BranchHandler<Tx>;
}

export interface SagaHandlers<Tx = undefined> {
  execute: BranchHandler<Tx>;
  compensate: BranchHandler<Tx>;
}

export interface ReceiverHandlers<Tx = undefined> {
  deliver: BranchHandler<Tx>;
}

export type PreparedState = 'COMMITTED' | 'ROLLED_BACK' | 'UNKNOWN';

export interface CheckPreparedContext {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly operation: string;
  readonly payload: unknown;
  readonly rawPayload: Buffer;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** As BranchContext.traceparent. */
  readonly traceparent: string | undefined;
}

export interface SourceHandlers {
  /** Did the local transaction behind this message commit? UNKNOWN = ask again later. */
  checkPrepared(ctx: CheckPreparedContext): PreparedState | Promise<PreparedState>;
}

/** The answer of a branch call, as middleware sees it. */
export interface CallResult extends BarrierResponse {
  outcome: BarrierOutcome;
}

/**
 * Wraps every branch call (not CheckPrepared), outside the barrier: `next()`
 * runs the barrier and the handler. For asynchronous work that must not be
 * inside the DB transaction (metrics, auth, fault injection).
 */
export type Middleware<Tx = undefined> = (ctx: BranchContext<Tx>, next: () => Promise<CallResult>) => Promise<CallResult>;

export interface ServeOptions<Tx = undefined> {
  /** host:port to listen on. "127.0.0.1:0" picks a free port. @default "0.0.0.0:50051" */
  address?: string;
  tcc?: TccHandlers<Tx>;
  saga?: SagaHandlers<Tx>;
  receiver?: ReceiverHandlers<Tx>;
  source?: SourceHandlers;
  barrier?: Barrier<Tx>;
  middleware?: Middleware<Tx>;
  /** Any pino-shaped logger (log.ts), e.g. `pino()`. @default JSON lines to stdout at LOG_LEVEL or "info" */
  logger?: Logger;
  /** @default grpc.ServerCredentials.createInsecure() */
  credentials?: grpc.ServerCredentials;
  /** On SIGTERM/SIGINT: drain (shutdown(gracePeriodMs)) then exit; a second signal forces. @default false */
  handleSignals?: boolean;
  /** Grace for signal-triggered shutdown. @default 10000 */
  gracePeriodMs?: number;
  serverOptions?: grpc.ServerOptions;
}

export interface Participant {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly server: grpc.Server;
  /** Stops taking calls, waits for in-flight ones up to graceMs (default 10 s), then cancels the rest. */
  shutdown(graceMs?: number): Promise<void>;
}

const EMPTY = Buffer.alloc(0);

export async function serveParticipant<Tx = undefined>(options: ServeOptions<Tx>): Promise<Participant> {
  const logger = options.logger ?? jsonLogger();
  const address = options.address ?? '0.0.0.0:50051';
  if (!options.tcc && !options.saga && !options.receiver && !options.source) {
    throw new Error('serveParticipant: give at least one of tcc, saga, receiver, source');
  }
  const inFlight = new Set<AbortController>();
  // @opentelemetry/api, if the application has it (an optional peer dependency).
  await loadTracing();
  const server = new grpc.Server(options.serverOptions);
  const branchCall = (method: BranchMethod, handler: BranchHandler<Tx>) =>
    makeBranchCall(method, handler, options, logger, inFlight);

  if (options.tcc) {
    server.addService(TccParticipantService, {
      try: branchCall('Try', options.tcc.try),
      confirm: branchCall('Confirm', options.tcc.confirm),
      cancel: branchCall('Cancel', options.tcc.cancel),
    });
  }
  if (options.saga) {
    server.addService(SagaParticipantService, {
      execute: branchCall('Execute', options.saga.execute),
      compensate: branchCall('Compensate', options.saga.compensate),
    });
  }
  if (options.receiver) {
    server.addService(MessageReceiverService, { deliver: branchCall('Deliver', options.receiver.deliver) });
  }
  if (options.source) {
    server.addService(MessageSourceService, { checkPrepared: makeCheckPrepared(options.source, logger, inFlight) });
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  logger.info({ address, port }, 'participant listening');

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000): Promise<void> => {
    shuttingDown ??= new Promise<void>((resolve) => {
      logger.info({ inFlight: inFlight.size, graceMs }, 'participant draining');
      const timer = setTimeout(() => {
        logger.warn({ inFlight: inFlight.size }, 'grace period over: cancelling in-flight calls');
        for (const ac of inFlight) ac.abort(new Error('server shutting down'));
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    }).then(() => {
      detachSignals();
      logger.info('participant stopped');
    });
    return shuttingDown;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: forcing shutdown');
      server.forceShutdown();
      process.exit(1);
    }
    logger.info({ signal }, 'signal received');
    void shutdown(options.gracePeriodMs ?? 10_000).then(() => process.exit(0));
  };
  const detachSignals = () => {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  };
  if (options.handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  return { port, server, shutdown };
}

function makeBranchCall<Tx>(
  method: BranchMethod,
  handler: BranchHandler<Tx>,
  options: ServeOptions<Tx>,
  baseLogger: Logger,
  inFlight: Set<AbortController>,
): grpc.handleUnaryCall<BranchRequest, BranchResponse> {
  return (call, callback) => {
    const req = call.request;
    const started = Date.now();
    const ac = new AbortController();
    inFlight.add(ac);
    call.on('cancelled', () => ac.abort(new Error('call cancelled by the caller or its deadline')));
    const log = baseLogger.child({
      uid: req.transactionUid,
      namespace: req.namespace,
      name: req.name,
      branch: req.branch,
      method,
      attempt: req.attempt,
      operation: req.operation,
    });
    const d = call.getDeadline();
    const deadline = d instanceof Date ? d : Number.isFinite(d) ? new Date(d) : undefined;
    const traceparent = traceparentOf(call.metadata);
    const ctx = makeContext<Tx>(req, method, ac.signal, deadline, log, traceparent);

    const runHandler = (tx: Tx): BarrierResponse | Promise<BarrierResponse> => {
      ctx.tx = tx;
      const out = handler(ctx);
      return isPromiseLike(out) ? Promise.resolve(out).then(normalizeResponse) : normalizeResponse(out);
    };
    const next = async (): Promise<CallResult> => {
      if (options.barrier) {
        if (!req.transactionUid || !req.branch) {
          throw new Refused('transaction_uid and branch are required', { code: 'FAILED_PRECONDITION' });
        }
        const r: BarrierResult = await options.barrier.run({ uid: req.transactionUid, branch: req.branch }, method, runHandler);
        return { ...r.response, outcome: r.outcome };
      }
      return { ...(await runHandler(undefined as Tx)), outcome: 'executed' };
    };

    const work = withServerSpan(
      traceparent,
      call.metadata,
      { path: branchPaths[method], method, attributes: { ...spanAttributes(req), 'kubetx.branch': req.branch, 'kubetx.attempt': req.attempt } },
      () => Promise.resolve().then(() => (options.middleware ? options.middleware(ctx, next) : next())),
      (r) => (r.ok ? { outcome: r.value.outcome, code: grpc.status.OK } : spanEndOf(r.error)),
    );
    work.then(
      (res) => {
        log.info({ outcome: res.outcome, durationMs: Date.now() - started }, `${method} ok`);
        callback(null, { message: res.message, data: res.data });
      },
      (err: unknown) => {
        const { code, details } = statusOf(err);
        const fields = { code: grpc.status[code], durationMs: Date.now() - started };
        if (err instanceof Refused) log.info({ ...fields, outcome: 'refused', reason: details }, `${method} refused`);
        else if (err instanceof InvalidPayload) log.info({ ...fields, outcome: 'invalid', reason: details }, `${method} invalid`);
        else log.warn({ ...fields, outcome: 'error', err }, `${method} failed`);
        callback({ code, details, metadata: new grpc.Metadata() } as grpc.ServiceError, null);
      },
    ).finally(() => inFlight.delete(ac));
  };
}

function makeCheckPrepared(
  source: SourceHandlers,
  baseLogger: Logger,
  inFlight: Set<AbortController>,
): grpc.handleUnaryCall<CheckPreparedRequest, CheckPreparedResponse> {
  const states: Record<PreparedState, CheckPreparedResponse_State> = {
    COMMITTED: CheckPreparedResponse_State.STATE_COMMITTED,
    ROLLED_BACK: CheckPreparedResponse_State.STATE_ROLLED_BACK,
    UNKNOWN: CheckPreparedResponse_State.STATE_UNKNOWN,
  };
  return (call, callback) => {
    const req = call.request;
    const ac = new AbortController();
    inFlight.add(ac);
    call.on('cancelled', () => ac.abort(new Error('call cancelled by the caller or its deadline')));
    const log = baseLogger.child({ uid: req.transactionUid, namespace: req.namespace, name: req.name, method: 'CheckPrepared', operation: req.operation });
    const payload = lazyJson(req.payload);
    const traceparent = traceparentOf(call.metadata);
    const ctx: CheckPreparedContext = {
      uid: req.transactionUid,
      namespace: req.namespace,
      name: req.name,
      operation: req.operation,
      get payload() {
        return payload();
      },
      rawPayload: req.payload,
      signal: ac.signal,
      logger: log,
      traceparent,
    };
    withServerSpan(
      traceparent,
      call.metadata,
      { path: MessageSourceService.checkPrepared.path.slice(1), method: 'CheckPrepared', attributes: spanAttributes(req) },
      () => Promise.resolve().then(() => source.checkPrepared(ctx)),
      (r) => (r.ok ? { outcome: String(r.value), code: grpc.status.OK } : spanEndOf(r.error)),
    )
      .then(
        (state) => {
          const s = states[state];
          if (s === undefined) throw new TypeError(`checkPrepared returned ${String(state)}; want COMMITTED, ROLLED_BACK or UNKNOWN`);
          log.info({ outcome: state }, 'CheckPrepared ok');
          callback(null, { state: s });
        },
      )
      .catch((err: unknown) => {
        const { code, details } = statusOf(err);
        log.warn({ code: grpc.status[code], err }, 'CheckPrepared failed');
        callback({ code, details, metadata: new grpc.Metadata() } as grpc.ServiceError, null);
      })
      .finally(() => inFlight.delete(ac));
  };
}

function makeContext<Tx>(
  req: BranchRequest,
  method: BranchMethod,
  signal: AbortSignal,
  deadline: Date | undefined,
  logger: Logger,
  traceparent: string | undefined,
): BranchContext<Tx> {
  const payload = lazyJson(req.payload);
  return {
    uid: req.transactionUid,
    namespace: req.namespace,
    name: req.name,
    branch: req.branch,
    operation: req.operation,
    method,
    get payload() {
      return payload();
    },
    rawPayload: req.payload,
    attempt: req.attempt,
    result: req.result,
    tx: undefined as Tx,
    signal,
    deadline,
    logger,
    traceparent,
  };
}

const branchPaths: Record<BranchMethod, string> = {
  Try: TccParticipantService.try.path.slice(1),
  Confirm: TccParticipantService.confirm.path.slice(1),
  Cancel: TccParticipantService.cancel.path.slice(1),
  Execute: SagaParticipantService.execute.path.slice(1),
  Compensate: SagaParticipantService.compensate.path.slice(1),
  Deliver: MessageReceiverService.deliver.path.slice(1),
};

const spanAttributes = (req: { transactionUid: string; namespace: string; name: string }) => ({
  'kubetx.transaction.namespace': req.namespace,
  'kubetx.transaction.name': req.name,
  'kubetx.transaction.uid': req.transactionUid,
});

/** A failed call's span: refusals and invalid requests are answers, not errors of this server. */
function spanEndOf(err: unknown): { outcome: string; code: number; error?: boolean } {
  const { code } = statusOf(err);
  if (err instanceof Refused) return { outcome: 'refused', code };
  if (err instanceof InvalidPayload) return { outcome: 'invalid', code };
  return { outcome: 'error', code, error: true };
}

/** Parses JSON on first use; an empty payload is undefined; invalid JSON throws InvalidPayload (it can never succeed). */
function lazyJson(raw: Buffer): () => unknown {
  let parsed = false;
  let value: unknown;
  return () => {
    if (!parsed) {
      if (raw.length === 0) value = undefined;
      else {
        try {
          value = JSON.parse(raw.toString('utf8'));
        } catch (err) {
          throw new InvalidPayload(`payload is not valid JSON: ${(err as Error).message}`, { cause: err });
        }
      }
      parsed = true;
    }
    return value;
  };
}

/** Turns a handler's return value into {message, data}, enforcing the 4 KiB limit on data. */
export function normalizeResponse(out: HandlerResponse | void | undefined): BarrierResponse {
  if (out === undefined || out === null) return { message: '', data: EMPTY };
  const message = out.message === undefined || out.message === null ? '' : String(out.message);
  let data: Buffer;
  const d = out.data;
  if (d === undefined || d === null) data = EMPTY;
  else if (Buffer.isBuffer(d)) data = d;
  else if (d instanceof Uint8Array) data = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  else if (typeof d === 'string') data = Buffer.from(d, 'utf8');
  else data = Buffer.from(JSON.stringify(d), 'utf8');
  if (data.length > MAX_DATA_BYTES) throw new DataTooLarge(data.length);
  return { message, data };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

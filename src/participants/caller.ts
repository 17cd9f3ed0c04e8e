/**
 * Makes one participant call and reports its outcome in the engine's terms.
 * Never throws: every failure, including a malformed response or an endpoint
 * the policy refuses, becomes a classified outcome, so one misbehaving
 * participant cannot break the reconcile of anything else.
 */
import { Metadata, status as Status, type Client, type ServiceError } from '@grpc/grpc-js';
import type { DistributedTransaction } from '../api/types.js';
import type { Call, CallOutcome, Method } from '../engine/types.js';
import {
  BranchRequest,
  BranchResponse,
  CheckPreparedRequest,
  CheckPreparedResponse,
  CheckPreparedResponse_State,
  MessageSourceService,
} from '../gen/kubetx/v1/participant.js';
import { classifyError } from './classify.js';
import { BRANCH_METHOD_PATHS } from './method-path.js';
import { dial, type DialDeps } from './dial.js';
import { payloadBytes, type PayloadSecrets } from './payload-secret.js';
import type { EndpointLimiter } from './endpoint-limiter.js';
import { publishBranch, type BrokerDeliveryDeps } from './broker-delivery.js';

const maxDataBytes = 4096;

export { methodPath } from './method-path.js';

export interface CallerDeps extends DialDeps {
  now: () => number;
  /** Default deadline of one call when the branch sets none. */
  defaultCallTimeoutMs: number;
  parseDuration: (d: string) => number;
  /** --max-calls-per-endpoint: calls wait here for a slot; the wait counts against the call's deadline. */
  limiter?: EndpointLimiter;
  /** payloadFrom.secretKeyRef values (--read-payload-secrets); without it such a branch fails its calls, saying why. */
  payloadSecrets?: PayloadSecrets;
  /** --max-call-timeout: no call waits longer than this, whatever its branch's callTimeout says. */
  maxCallTimeoutMs?: number;
  /** Broker delivery (--nats-url): Deliver on a branch with spec.branches[].broker publishes here. */
  broker?: BrokerDeliveryDeps;
}

export interface CallObservation extends CallOutcome {
  durationMs: number;
  /** gRPC status name (OK, ABORTED, UNAVAILABLE, DEADLINE_EXCEEDED, ...), or LOCAL_ERROR when no call was made or its answer was unusable. */
  code: string;
}

/**
 * gRPC status name for the metrics label. Only the 17 codes gRPC defines: a
 * participant answering with made-up numeric codes must not grow the
 * operator's series (the number itself stays in the outcome's message).
 */
export function statusName(code: number): string {
  return Number.isInteger(code) && code >= 0 && code <= 16 ? (Status[code] ?? 'UNKNOWN_CODE') : 'UNKNOWN_CODE';
}

/** The call's deadline: its branch's callTimeout (or the default), capped by --max-call-timeout. */
export function callTimeoutMs(deps: CallerDeps, callTimeout: string | undefined): number {
  let ms = deps.defaultCallTimeoutMs;
  if (callTimeout) {
    try {
      ms = deps.parseDuration(callTimeout);
    } catch {
      // The CRD validates the format; an unparsable value gets the default.
    }
  }
  return deps.maxCallTimeoutMs !== undefined ? Math.min(ms, deps.maxCallTimeoutMs) : ms;
}

/**
 * Waits for an endpoint slot and makes one unary call, bounded by `deadline`
 * (ms since epoch) from before the wait, and cancelled when `signal` aborts
 * (the transaction was deleted, or the operator is stopping).
 */
async function unary<Req, Res>(
  deps: CallerDeps,
  client: Client,
  target: string,
  path: string,
  encode: (v: Req) => Buffer,
  decode: (b: Buffer) => Res,
  request: Req,
  deadline: number,
  signal: AbortSignal | undefined,
  headers: Readonly<Record<string, string>> | undefined,
): Promise<{ err: ServiceError | null; res?: Res; local?: { kind: CallOutcome['kind']; message: string } }> {
  const budget = deadline - Date.now();
  // A call needs at least half its time once it has a slot: started with less, it would likely be
  // abandoned by its deadline while the participant still works on it, and the participant would see
  // more concurrent calls than --max-calls-per-endpoint allows.
  const release = deps.limiter ? await deps.limiter.acquire(target, { deadline: deadline - budget / 2, signal }) : () => undefined;
  if (!release) {
    if (signal?.aborted) return { err: null, local: { kind: 'retryable', message: 'call cancelled before it was made' } };
    return { err: null, local: { kind: 'timeout', message: `no call slot for ${target} within the call's deadline (--max-calls-per-endpoint=${deps.limiter?.max})` } };
  }
  try {
    return await new Promise((resolve) => {
      const metadata = new Metadata();
      // Trace context (traceparent, tracestate) when tracing is on.
      if (headers) for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
      const c = client.makeUnaryRequest(path, encode, decode, request, metadata, { deadline: new Date(deadline) }, (err, res) => {
        signal?.removeEventListener('abort', cancel);
        resolve({ err: err ?? null, res });
      });
      const cancel = () => c.cancel();
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  } finally {
    release();
  }
}

/** `headers`: extra gRPC metadata for the call (the trace context). */
export async function callParticipant(deps: CallerDeps, tx: DistributedTransaction, call: Call, signal?: AbortSignal, headers?: Readonly<Record<string, string>>): Promise<CallObservation> {
  const started = deps.now();
  const done = (kind: CallOutcome['kind'], message?: string, data?: string): CallObservation => {
    const finishedAt = deps.now();
    const code = kind === 'ok' ? 'OK' : 'LOCAL_ERROR';
    return { branch: call.branch, method: call.method, attempt: call.attempt, kind, message, data, finishedAt, durationMs: finishedAt - started, code };
  };
  if (call.method === 'CheckPrepared') return checkPrepared(deps, tx, call, done, signal, headers);
  const index = tx.spec.branches.findIndex((b) => b.name === call.branch);
  const branch = tx.spec.branches[index];
  if (!branch) return done('retryable', `no branch named ${call.branch} in spec`);
  if (branch.broker) return deliverToBroker(deps, tx, index, call, done, signal);
  if (!branch.endpoint) return done('retryable', `spec.branches[${index}]: no endpoint`);
  try {
    const { client, slot } = await dial(deps, branch.endpoint, tx.metadata.namespace, `spec.branches[${index}].endpoint`);
    const request: BranchRequest = {
      transactionUid: tx.metadata.uid,
      namespace: tx.metadata.namespace,
      name: tx.metadata.name,
      branch: branch.name,
      operation: branch.operation ?? '',
      payload: payloadBytes(tx, index, deps.payloadSecrets),
      attempt: call.attempt,
      result: call.result ? Buffer.from(call.result, 'base64') : Buffer.alloc(0),
    };
    const deadline = Date.now() + callTimeoutMs(deps, branch.callTimeout);
    const response = await unary(
      deps,
      client,
      slot,
      BRANCH_METHOD_PATHS[call.method as Exclude<Method, 'CheckPrepared'>],
      (v: BranchRequest) => Buffer.from(BranchRequest.encode(v).finish()),
      (b: Buffer) => BranchResponse.decode(b),
      request,
      deadline,
      signal,
      headers,
    );
    if (response.local) return done(response.local.kind, response.local.message);
    if (response.err) return failed(done, classifyError(call.method, serviceOf(BRANCH_METHOD_PATHS[call.method as Exclude<Method, 'CheckPrepared'>]), response.err), response.err.code);
    const res = response.res ?? { message: '', data: Buffer.alloc(0) };
    if (res.data.length > maxDataBytes) {
      return done('retryable', `response data is ${res.data.length} bytes, more than the ${maxDataBytes} allowed`);
    }
    return done('ok', res.message || undefined, res.data.length > 0 ? Buffer.from(res.data).toString('base64') : undefined);
  } catch (err) {
    // Decoding errors, policy refusals, Secret look-ups: retry later; the
    // policy case is caught before any call by the reconciler.
    return done('retryable', (err as Error).message.slice(0, 512));
  }
}

/** Deliver on a broker branch: a publish instead of a gRPC call (broker-delivery.ts). */
async function deliverToBroker(
  deps: CallerDeps,
  tx: DistributedTransaction,
  index: number,
  call: Call,
  done: (kind: CallOutcome['kind'], message?: string, data?: string) => CallObservation,
  signal: AbortSignal | undefined,
): Promise<CallObservation> {
  if (call.method !== 'Deliver') return done('retryable', `spec.branches[${index}].broker: a broker branch takes only Deliver, not ${call.method}`);
  if (!deps.broker) return done('retryable', `spec.branches[${index}].broker: this operator has no broker configured (--nats-url)`);
  const deadline = Date.now() + callTimeoutMs(deps, tx.spec.branches[index]!.callTimeout);
  const r = await publishBranch(deps.broker, tx, index, call, deadline, signal, deps.payloadSecrets);
  if (r.kind === 'ok') return { ...done('ok', r.message), delivery: r.delivery };
  return { ...done(r.kind, r.message), code: r.code };
}

/** "/kubetx.v1alpha1.TccParticipant/Try" → "kubetx.v1alpha1.TccParticipant". */
function serviceOf(path: string): string {
  return path.split('/')[1] ?? path;
}

function failed(done: (kind: CallOutcome['kind'], message?: string) => CallObservation, c: ReturnType<typeof classifyError>, code: number): CallObservation {
  const o: CallObservation = { ...done(c.kind, c.message), code: statusName(code) };
  if (c.reason) o.reason = c.reason;
  return o;
}

/** The field path of the message source's endpoint (policy errors name it). */
export const MESSAGE_SOURCE_FIELD = 'spec.message.source.endpoint';

const checkStates: Record<number, CallOutcome['checkState']> = {
  [CheckPreparedResponse_State.STATE_UNKNOWN]: 'UNKNOWN',
  [CheckPreparedResponse_State.STATE_COMMITTED]: 'COMMITTED',
  [CheckPreparedResponse_State.STATE_ROLLED_BACK]: 'ROLLED_BACK',
};

/** Message mode's check-back: MessageSource/CheckPrepared on spec.message.source (call.branch is "@source"). */
async function checkPrepared(
  deps: CallerDeps,
  tx: DistributedTransaction,
  call: Call,
  done: (kind: CallOutcome['kind'], message?: string, data?: string) => CallObservation,
  signal: AbortSignal | undefined,
  headers: Readonly<Record<string, string>> | undefined,
): Promise<CallObservation> {
  const source = tx.spec.message?.source;
  if (!source?.endpoint) return done('retryable', 'spec.message.source.endpoint is not set');
  try {
    const { client, slot } = await dial(deps, source.endpoint, tx.metadata.namespace, MESSAGE_SOURCE_FIELD);
    const request: CheckPreparedRequest = {
      transactionUid: tx.metadata.uid,
      namespace: tx.metadata.namespace,
      name: tx.metadata.name,
      operation: source.operation ?? '',
      payload: payloadBytes(tx, undefined, deps.payloadSecrets),
    };
    const response = await unary(
      deps,
      client,
      slot,
      MessageSourceService.checkPrepared.path,
      (v: CheckPreparedRequest) => Buffer.from(CheckPreparedRequest.encode(v).finish()),
      (b: Buffer) => CheckPreparedResponse.decode(b),
      request,
      Date.now() + callTimeoutMs(deps, undefined),
      signal,
      headers,
    );
    if (response.local) return done(response.local.kind, response.local.message);
    if (response.err) return failed(done, classifyError('CheckPrepared', serviceOf(MessageSourceService.checkPrepared.path), response.err), response.err.code);
    const state = checkStates[response.res?.state ?? CheckPreparedResponse_State.STATE_UNKNOWN];
    if (!state) return done('retryable', `unrecognized CheckPrepared state ${String(response.res?.state)}`);
    return { ...done('ok', `source answered ${state}`), checkState: state };
  } catch (err) {
    return done('retryable', (err as Error).message.slice(0, 512));
  }
}

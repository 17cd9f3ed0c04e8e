/**
 * Makes one participant call and reports its outcome in the engine's terms.
 * Never throws: every failure, including a malformed response or an endpoint
 * the policy refuses, becomes a classified outcome, so one misbehaving
 * participant cannot break the reconcile of anything else.
 */
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import type { DistributedTransaction } from '../api/types.js';
import type { Call, CallOutcome, Method } from '../engine/types.js';
import {
  BranchRequest,
  BranchResponse,
  CheckPreparedRequest,
  CheckPreparedResponse,
  CheckPreparedResponse_State,
  MessageReceiverService,
  MessageSourceService,
  SagaParticipantService,
  TccParticipantService,
} from '../gen/kubetx/v1/participant.js';
import { classify, describeError } from './classify.js';
import type { ChannelPool, TlsMaterial } from './pool.js';
import { resolveEndpoint, type EndpointPolicy } from './endpoint.js';
import type { EndpointLimiter } from './endpoint-limiter.js';

const methodPaths: Record<Exclude<Method, 'CheckPrepared'>, string> = {
  Try: TccParticipantService.try.path,
  Confirm: TccParticipantService.confirm.path,
  Cancel: TccParticipantService.cancel.path,
  Execute: SagaParticipantService.execute.path,
  Compensate: SagaParticipantService.compensate.path,
  Deliver: MessageReceiverService.deliver.path,
};

const maxDataBytes = 4096;
const noRelease = Promise.resolve(() => undefined);

export interface CallerDeps {
  pool: ChannelPool;
  policy: EndpointPolicy;
  /** Reads a kubernetes.io/tls Secret (ca.crt, tls.crt, tls.key) in the transaction's namespace. */
  loadTls?: (namespace: string, name: string) => Promise<{ material: TlsMaterial; version: string }>;
  now: () => number;
  /** Default deadline of one call when the branch sets none. */
  defaultCallTimeoutMs: number;
  parseDuration: (d: string) => number;
  /** --max-calls-per-endpoint: calls wait here for a slot; the call's deadline starts once it has one. */
  limiter?: EndpointLimiter;
}

export interface CallObservation extends CallOutcome {
  durationMs: number;
  /** gRPC status name (OK, ABORTED, UNAVAILABLE, DEADLINE_EXCEEDED, ...), or LOCAL_ERROR when no call was made or its answer was unusable. */
  code: string;
}

export async function callParticipant(deps: CallerDeps, tx: DistributedTransaction, call: Call): Promise<CallObservation> {
  const started = deps.now();
  const done = (kind: CallOutcome['kind'], message?: string, data?: string): CallObservation => {
    const finishedAt = deps.now();
    const code = kind === 'ok' ? 'OK' : 'LOCAL_ERROR';
    return { branch: call.branch, method: call.method, attempt: call.attempt, kind, message, data, finishedAt, durationMs: finishedAt - started, code };
  };
  if (call.method === 'CheckPrepared') return checkPrepared(deps, tx, call, done);
  const index = tx.spec.branches.findIndex((b) => b.name === call.branch);
  const branch = tx.spec.branches[index];
  if (!branch) return done('retryable', `no branch named ${call.branch} in spec`);
  try {
    const endpoint = resolveEndpoint(branch.endpoint, tx.metadata.namespace, `spec.branches[${index}].endpoint`, deps.policy);
    let tls;
    if (endpoint.tlsSecretName) {
      if (!deps.loadTls) return done('retryable', 'TLS endpoints need the operator to read Secrets');
      const s = await deps.loadTls(tx.metadata.namespace, endpoint.tlsSecretName);
      tls = { material: s.material, serverName: endpoint.serverName, secretVersion: s.version };
    }
    const client = deps.pool.get(endpoint.target, tls);
    const payload = branch.payload ?? tx.spec.payload;
    const request: BranchRequest = {
      transactionUid: tx.metadata.uid,
      namespace: tx.metadata.namespace,
      name: tx.metadata.name,
      branch: branch.name,
      operation: branch.operation ?? '',
      payload: payload === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(payload)),
      attempt: call.attempt,
      result: call.result ? Buffer.from(call.result, 'base64') : Buffer.alloc(0),
    };
    const timeoutMs = branch.callTimeout ? deps.parseDuration(branch.callTimeout) : deps.defaultCallTimeoutMs;
    const release = await (deps.limiter?.acquire(endpoint.target) ?? noRelease);
    const response = await new Promise<{ err: ServiceError | null; res?: BranchResponse }>((resolve) => {
      client.makeUnaryRequest(
        methodPaths[call.method as Exclude<Method, 'CheckPrepared'>],
        (v: BranchRequest) => Buffer.from(BranchRequest.encode(v).finish()),
        (b: Buffer) => BranchResponse.decode(b),
        request,
        new Metadata(),
        { deadline: new Date(Date.now() + timeoutMs) },
        (err, res) => resolve({ err: err ?? null, res }),
      );
    }).finally(release);
    const kind = classify(call.method, response.err);
    if (response.err) return { ...done(kind, describeError(response.err)), code: Status[response.err.code] ?? `CODE_${response.err.code}` };
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
): Promise<CallObservation> {
  const source = tx.spec.message?.source;
  if (!source?.endpoint) return done('retryable', 'spec.message.source.endpoint is not set');
  try {
    const endpoint = resolveEndpoint(source.endpoint, tx.metadata.namespace, MESSAGE_SOURCE_FIELD, deps.policy);
    let tls;
    if (endpoint.tlsSecretName) {
      if (!deps.loadTls) return done('retryable', 'TLS endpoints need the operator to read Secrets');
      const s = await deps.loadTls(tx.metadata.namespace, endpoint.tlsSecretName);
      tls = { material: s.material, serverName: endpoint.serverName, secretVersion: s.version };
    }
    const client = deps.pool.get(endpoint.target, tls);
    const payload = tx.spec.payload;
    const request: CheckPreparedRequest = {
      transactionUid: tx.metadata.uid,
      namespace: tx.metadata.namespace,
      name: tx.metadata.name,
      operation: source.operation ?? '',
      payload: payload === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(payload)),
    };
    const release = await (deps.limiter?.acquire(endpoint.target) ?? noRelease);
    const response = await new Promise<{ err: ServiceError | null; res?: CheckPreparedResponse }>((resolve) => {
      client.makeUnaryRequest(
        MessageSourceService.checkPrepared.path,
        (v: CheckPreparedRequest) => Buffer.from(CheckPreparedRequest.encode(v).finish()),
        (b: Buffer) => CheckPreparedResponse.decode(b),
        request,
        new Metadata(),
        { deadline: new Date(Date.now() + deps.defaultCallTimeoutMs) },
        (err, res) => resolve({ err: err ?? null, res }),
      );
    }).finally(release);
    const kind = classify('CheckPrepared', response.err);
    if (response.err) return { ...done(kind, describeError(response.err)), code: Status[response.err.code] ?? `CODE_${response.err.code}` };
    const state = checkStates[response.res?.state ?? CheckPreparedResponse_State.STATE_UNKNOWN];
    if (!state) return done('retryable', `unrecognized CheckPrepared state ${String(response.res?.state)}`);
    return { ...done('ok', `source answered ${state}`), checkState: state };
  } catch (err) {
    return done('retryable', (err as Error).message.slice(0, 512));
  }
}

/**
 * A participant for tests whose every answer is decided by the test: a
 * function of (method, request, how many times this branch+method was called)
 * returns OK (with optional data) or any gRPC status. It records each call as
 * the participant saw it (method, transaction, branch, attempt, when it
 * arrived), so tests judge timing and retries from the participant's side.
 * Only the services listed are served: a missing one answers UNIMPLEMENTED,
 * as a real server of another service would.
 */
import * as grpc from '@grpc/grpc-js';
import {
  BranchRequest,
  CheckPreparedResponse_State,
  MessageReceiverService,
  MessageSourceService,
  SagaParticipantService,
  TccParticipantService,
} from '../../src/gen/kubetx/v1/participant.js';

export type ScriptedMethod = 'Try' | 'Confirm' | 'Cancel' | 'Execute' | 'Compensate' | 'Deliver' | 'CheckPrepared';

export interface SeenCall {
  method: ScriptedMethod;
  transaction: string;
  branch: string;
  attempt: number;
  receivedAt: number;
}

/** OK (data optional), a gRPC status to fail with, or for CheckPrepared the state to answer. */
export type Answer = { ok: true; data?: Buffer } | { code: grpc.status; details: string } | { state: 'COMMITTED' | 'ROLLED_BACK' | 'UNKNOWN' };

export type Script = (method: ScriptedMethod, call: SeenCall, nth: number) => Answer;

export interface ScriptedParticipant {
  port: number;
  address: string;
  calls: SeenCall[];
  /** Calls of one method (optionally one transaction). */
  seen(method: ScriptedMethod, transaction?: string): SeenCall[];
  /** Replaces the script (e.g. "the participant is fixed"). */
  setScript(script: Script): void;
  stop(): Promise<void>;
}

export type ServedService = 'tcc' | 'saga' | 'receiver' | 'source';

const states = { COMMITTED: CheckPreparedResponse_State.STATE_COMMITTED, ROLLED_BACK: CheckPreparedResponse_State.STATE_ROLLED_BACK, UNKNOWN: CheckPreparedResponse_State.STATE_UNKNOWN };

export async function startScriptedParticipant(script: Script, services: ServedService[] = ['tcc', 'saga', 'receiver', 'source'], port = 0): Promise<ScriptedParticipant> {
  const server = new grpc.Server();
  const calls: SeenCall[] = [];
  const counts = new Map<string, number>();
  let current = script;
  const answer = (method: ScriptedMethod) => (call: grpc.ServerUnaryCall<BranchRequest & { name: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const r = call.request as Partial<BranchRequest> & { name: string };
    const seen: SeenCall = { method, transaction: r.name, branch: r.branch ?? '@source', attempt: r.attempt ?? 0, receivedAt: Date.now() };
    calls.push(seen);
    const key = `${seen.transaction}/${seen.branch}/${method}`;
    const nth = (counts.get(key) ?? 0) + 1;
    counts.set(key, nth);
    const a = current(method, seen, nth);
    if ('code' in a) callback({ code: a.code, details: a.details } as grpc.ServiceError);
    else if ('state' in a) callback(null, { state: states[a.state] });
    else callback(null, { message: '', data: a.data ?? Buffer.alloc(0) });
  };
  if (services.includes('tcc')) server.addService(TccParticipantService, { try: answer('Try'), confirm: answer('Confirm'), cancel: answer('Cancel') });
  if (services.includes('saga')) server.addService(SagaParticipantService, { execute: answer('Execute'), compensate: answer('Compensate') });
  if (services.includes('receiver')) server.addService(MessageReceiverService, { deliver: answer('Deliver') });
  if (services.includes('source')) server.addService(MessageSourceService, { checkPrepared: answer('CheckPrepared') });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    calls,
    seen: (method, transaction) => calls.filter((c) => c.method === method && (transaction === undefined || c.transaction === transaction)),
    setScript: (s) => {
      current = s;
    },
    stop: async () => server.forceShutdown(),
  };
}

export const OK: Answer = { ok: true };
export const unavailable = (details = 'participant down'): Answer => ({ code: grpc.status.UNAVAILABLE, details });

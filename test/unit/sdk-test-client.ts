// Test helpers: a promise-based participant client over real grpc-js.
import * as grpc from '@grpc/grpc-js';
import {
  BranchRequest,
  type BranchResponse,
  TccParticipantClient,
} from '../../src/gen/kubetx/v1/participant.js';

export type TccMethod = 'try' | 'confirm' | 'cancel';

export interface CallError {
  code: grpc.status;
  details: string;
}

export type CallResult = { ok: true; response: BranchResponse } | { ok: false; error: CallError };

export function tccClient(port: number): TccParticipantClient {
  return new TccParticipantClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

export function request(fields: Partial<Omit<BranchRequest, 'payload' | 'result'>> & { payload?: unknown; result?: Buffer }): BranchRequest {
  const { payload, result, ...rest } = fields;
  return BranchRequest.fromPartial({
    transactionUid: 'uid-1',
    namespace: 'shop',
    name: 'pay-order-1001',
    branch: 'b',
    operation: 'op',
    attempt: 1,
    ...rest,
    payload: payload === undefined ? Buffer.alloc(0) : Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload)),
    result: result ?? Buffer.alloc(0),
  });
}

export function call(
  client: TccParticipantClient,
  method: TccMethod,
  req: BranchRequest,
  timeoutMs = 5000,
): Promise<CallResult> {
  return new Promise((resolve) => {
    client[method](req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err) resolve({ ok: false, error: { code: err.code, details: err.details } });
      else resolve({ ok: true, response });
    });
  });
}

/** Like `call` but throws on a non-OK status. */
export async function callOk(client: TccParticipantClient, method: TccMethod, req: BranchRequest, timeoutMs = 5000): Promise<BranchResponse> {
  const r = await call(client, method, req, timeoutMs);
  if (!r.ok) throw new Error(`${method} failed: ${grpc.status[r.error.code]} ${r.error.details}`);
  return r.response;
}

/** Like `call` but expects a non-OK status. */
export async function callErr(client: TccParticipantClient, method: TccMethod, req: BranchRequest, timeoutMs = 5000): Promise<CallError> {
  const r = await call(client, method, req, timeoutMs);
  if (r.ok) throw new Error(`${method} unexpectedly succeeded: ${r.response.message}`);
  return r.error;
}

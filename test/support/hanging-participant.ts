/**
 * A hostile participant for tests: it accepts every TCC and Saga call and
 * never answers. It records each call (method, transaction, the deadline the
 * caller set) and whether the caller cancelled it, so a test can see from the
 * participant's side how long the operator was willing to wait and whether it
 * let go when the transaction was deleted.
 */
import * as grpc from '@grpc/grpc-js';
import { BranchRequest, SagaParticipantService, TccParticipantService } from '../../src/gen/kubetx/v1/participant.js';

export interface HeldCall {
  method: string;
  transaction: string;
  namespace: string;
  receivedAt: number;
  /** ms since epoch; Infinity when the caller set none. */
  deadline: number;
  cancelled: boolean;
  /** When the caller cancelled it (or its deadline passed). */
  cancelledAt?: number;
  /** Answers it after all (tests that want it released). */
  answer(): void;
}

export interface HangingParticipant {
  port: number;
  calls: HeldCall[];
  /** Calls still open (neither cancelled nor answered). */
  open(): HeldCall[];
  stop(): Promise<void>;
}

/**
 * Another hostile participant: every Try/Execute fails with a status code no
 * gRPC version defines, a new one each time (1000, 1001, ...).
 */
export async function startMadeUpCodeParticipant(): Promise<{ port: number; answered: () => number; stop: () => Promise<void> }> {
  const server = new grpc.Server();
  let n = 0;
  const fail = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: 1000 + n++, details: 'made-up status' } as grpc.ServiceError);
  server.addService(TccParticipantService, { try: fail, confirm: fail, cancel: fail });
  server.addService(SagaParticipantService, { execute: fail, compensate: fail });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, answered: () => n, stop: async () => server.forceShutdown() };
}

export async function startHangingParticipant(): Promise<HangingParticipant> {
  const server = new grpc.Server();
  const calls: HeldCall[] = [];
  const answered = new Set<HeldCall>();
  const hold = (method: string) => (call: grpc.ServerUnaryCall<BranchRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const d = call.getDeadline();
    const deadline = d instanceof Date ? d.getTime() : typeof d === 'number' && Number.isFinite(d) ? d : Infinity;
    const held: HeldCall = {
      method,
      transaction: call.request.name,
      namespace: call.request.namespace,
      receivedAt: Date.now(),
      deadline,
      cancelled: false,
      answer: () => {
        if (answered.has(held) || held.cancelled) return;
        answered.add(held);
        callback(null, { message: '', data: Buffer.alloc(0) });
      },
    };
    call.on('cancelled', () => {
      held.cancelled = true;
      held.cancelledAt = Date.now();
    });
    calls.push(held);
  };
  server.addService(TccParticipantService, { try: hold('Try'), confirm: hold('Confirm'), cancel: hold('Cancel') });
  server.addService(SagaParticipantService, { execute: hold('Execute'), compensate: hold('Compensate') });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    calls,
    open: () => calls.filter((c) => !c.cancelled && !answered.has(c)),
    stop: () => new Promise<void>((resolve) => {
      server.forceShutdown();
      resolve();
    }),
  };
}

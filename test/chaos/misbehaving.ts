/**
 * Participants that break the protocol, on loopback: garbage response bytes,
 * wrong status codes, extremely slow answers, and connection resets.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Server, ServerCredentials, status, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { BranchRequest } from '../../src/gen/kubetx/v1/participant.js';

export interface BadParticipant {
  kind: string;
  address: string;
  stop(): Promise<void>;
}

const PATHS = { try: 'Try', confirm: 'Confirm', cancel: 'Cancel' } as const;

function definition(serialize: () => Buffer): ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [k, m] of Object.entries(PATHS)) {
    out[k] = {
      path: `/kubetx.v1.TccParticipant/${m}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: BranchRequest) => Buffer.from(BranchRequest.encode(v).finish()),
      requestDeserialize: (b: Buffer) => BranchRequest.decode(b),
      responseSerialize: serialize,
      responseDeserialize: (b: Buffer) => b,
    };
  }
  return out as ServiceDefinition;
}

async function grpcServer(kind: string, serialize: () => Buffer, handler: UntypedServiceImplementation[string]): Promise<BadParticipant> {
  const server = new Server();
  const impl: UntypedServiceImplementation = { try: handler, confirm: handler, cancel: handler };
  server.addService(definition(serialize), impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { kind, address: `127.0.0.1:${port}`, stop: async () => void server.forceShutdown() };
}

/** Answers OK with random bytes that are not a BranchResponse. */
export function garbageParticipant(): Promise<BadParticipant> {
  // 0xff… is never a valid protobuf tag sequence.
  return grpcServer('garbage', () => Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), randomBytes(61)]), (_call: unknown, cb: (e: null, v: unknown) => void) => cb(null, {}));
}

/** Answers with status codes outside the protocol, including one that gRPC does not define. */
export function wrongStatusParticipant(): Promise<BadParticipant> {
  const codes = [status.UNIMPLEMENTED, status.INTERNAL, status.UNAUTHENTICATED, status.OUT_OF_RANGE, status.ALREADY_EXISTS, 42];
  let i = 0;
  return grpcServer('wrong-status', () => Buffer.alloc(0), (_call: unknown, cb: (e: { code: number; details: string }) => void) =>
    cb({ code: codes[i++ % codes.length]!, details: 'misbehaving participant' }),
  );
}

/** Answers after `delayMs` (far past any callTimeout). */
export async function slowParticipant(delayMs = 10 * 60_000): Promise<BadParticipant> {
  const timers = new Set<NodeJS.Timeout>();
  const bad = await grpcServer('slow', () => Buffer.alloc(0), (_call: unknown, cb: (e: null, v: unknown) => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      cb(null, {});
    }, delayMs);
    timers.add(t);
  });
  return {
    ...bad,
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      await bad.stop();
    },
  };
}

/** Accepts TCP connections and destroys them at once (connection reset). */
export async function resettingParticipant(): Promise<BadParticipant> {
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((s) => {
    s.on('error', () => undefined);
    s.resetAndDestroy();
  });
  server.on('connection', (s) => sockets.add(s));
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    kind: 'reset',
    address: `127.0.0.1:${port}`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export async function allBadParticipants(): Promise<BadParticipant[]> {
  return Promise.all([garbageParticipant(), wrongStatusParticipant(), slowParticipant(), resettingParticipant()]);
}

/**
 * In-process participants for the benchmark: real gRPC servers from the SDK
 * (serveParticipant) that serve every protocol (TCC, Saga, Deliver) and answer
 * at once, or after a fixed service time. No barrier: the handlers have no
 * effect to protect, so what is measured is the operator, not a database.
 */
import { pino } from 'pino';
import { serveParticipant, type Participant } from '../../sdk/typescript/src/index.js';

export interface ParticipantSet {
  /** host:port of each server. */
  addresses: string[];
  calls(): number;
  stop(): Promise<void>;
}

const silent = pino({ level: 'silent' });

export async function startParticipants(count: number, serviceTimeMs = 0): Promise<ParticipantSet> {
  let calls = 0;
  const answer = serviceTimeMs > 0
    ? () => new Promise<{ data: string }>((r) => setTimeout(() => { calls++; r({ data: 'ok' }); }, serviceTimeMs))
    : () => { calls++; return { data: 'ok' }; };
  // The Try returns a small reservation id, as a real participant would; Confirm/Cancel get it back.
  const tryAnswer = serviceTimeMs > 0
    ? (ctx: { branch: string }) => new Promise<{ data: object }>((r) => setTimeout(() => { calls++; r({ data: { reservation: `r-${ctx.branch}-0001` } }); }, serviceTimeMs))
    : (ctx: { branch: string }) => { calls++; return { data: { reservation: `r-${ctx.branch}-0001` } }; };
  const servers: Participant[] = [];
  for (let i = 0; i < count; i++) {
    servers.push(
      await serveParticipant({
        address: '127.0.0.1:0',
        logger: silent,
        tcc: { try: tryAnswer, confirm: answer, cancel: answer },
        saga: { execute: tryAnswer, compensate: answer },
        receiver: { deliver: answer },
      }),
    );
  }
  return {
    addresses: servers.map((s) => `127.0.0.1:${s.port}`),
    calls: () => calls,
    stop: async () => {
      await Promise.all(servers.map((s) => s.shutdown(1000)));
    },
  };
}

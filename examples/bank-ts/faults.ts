/**
 * `--fault-rate`: transient failures for tests, as the SDK's middleware (it
 * runs outside the barrier). With probability rate/2 a call answers
 * UNAVAILABLE before doing anything, and with probability rate/2 it answers
 * UNAVAILABLE after its effect committed (the reply is "lost"). Both are
 * retryable, so the operator calls again and the barrier must answer the
 * repeat without applying it twice.
 */
import type { Logger } from 'pino';
import type { Middleware } from '../../sdk/typescript/src/index.js';

/** A small seeded generator (mulberry32), so a run's fault draws can be replayed with --fault-seed. */
export function seededRandom(seed: bigint): () => number {
  let a = Number((seed ^ (seed >> 32n)) & 0xffffffffn) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An error the SDK answers UNAVAILABLE (anything but Refused is). */
class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

export function faultMiddleware<Tx>(rate: number, seed: bigint, logger: Logger): Middleware<Tx> {
  const random = seededRandom(seed);
  const hit = () => random() < rate / 2;
  return async (ctx, next) => {
    const fields = { method: ctx.method, uid: ctx.uid, branch: ctx.branch, attempt: ctx.attempt };
    if (hit()) {
      logger.info({ when: 'before', ...fields }, 'fault injected');
      throw new InjectedFault('injected fault (before the call)');
    }
    const result = await next();
    if (hit()) {
      logger.info({ when: 'after', ...fields }, 'fault injected');
      throw new InjectedFault('injected fault (after the commit)');
    }
    return result;
  };
}

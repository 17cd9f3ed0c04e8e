/**
 * The two ways a publish fails, as the router and the engine act on them:
 *
 * - `unavailable`: the broker did not take the message (down, unreachable,
 *   timed out, overloaded). Retrying later, or on the other route, can work;
 *   counts towards failing over. The message is still only committed, not
 *   delivered: nothing is lost, the caller retries.
 * - `rejected`: the broker is up and refused this message (no stream captures
 *   the subject, permission denied, too large, wrong key type in Redis). The
 *   same message would be refused again and another route would only hide a
 *   configuration error, so it does not count towards failing over.
 *
 * Classification is by error class (NATS) or the reply's error code (Redis's
 * first word, e.g. OOM, LOADING): never by matching free text.
 */
export type FailureKind = 'unavailable' | 'rejected';
export type Via = 'nats' | 'redis';

export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  constructor(
    readonly kind: FailureKind,
    readonly via: Via,
    /** CamelCase, for metrics, logs and the branch status: Timeout, Disconnected, NoStream… */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${via}: ${message}`, options);
  }
}

export function isUnavailable(err: unknown): err is BrokerError {
  return err instanceof BrokerError && err.kind === 'unavailable';
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What the two paths of `subscribe` (broker-nats.ts, broker-redis.ts) and its
 * dispatcher (broker.ts) share. Not part of the public API.
 */
import type { Logger } from './log.js';

/** Which path a message came by. */
export type BrokerPath = 'nats' | 'redis';

/**
 * A message as a path read it, before validation, with that path's ways to
 * finish it.
 */
export interface Delivery {
  readonly path: BrokerPath;
  readonly id: string | undefined;
  readonly key: string | undefined;
  readonly transaction: string | undefined;
  readonly subject: string;
  readonly data: Buffer;
  readonly redelivered: boolean;
  /** Acks; resolves once the broker confirmed. */
  ack(): Promise<void>;
  /** The handler failed: leave it for redelivery (JetStream: NAK with a delay). */
  retry(): void;
  /** It can never succeed: drop it (JetStream: TERM; Redis: XACK). */
  reject(reason: string): Promise<void>;
}

/** What a path needs of the dispatcher. */
export interface Sink {
  readonly logger: Logger;
  /** How many more messages this path may receive now. */
  room(path: BrokerPath): number;
  /** Resolves when `room(path) > 0` or `signal` aborts. */
  waitForRoom(path: BrokerPath, signal: AbortSignal): Promise<void>;
  dispatch(delivery: Delivery): void;
  /** The path's consumer is set up. */
  ready(path: BrokerPath): void;
}

/** A running path. */
export interface Source {
  /** Resolves when the path has stopped fetching (after `stopping` aborted). Never rejects. */
  readonly finished: Promise<void>;
  /** Closes the connections the path opened (after every in-flight message finished). */
  close(): Promise<void>;
}

/** Resolves after `ms` or when `signal` aborts (the paths' backoff between failed attempts). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** Exponential backoff for the paths' retries: 200 ms doubling to 5 s. */
export function backoff(): { next(): number; reset(): void } {
  let ms = 200;
  return {
    next() {
      const now = ms;
      ms = Math.min(ms * 2, 5_000);
      return now;
    },
    reset() {
      ms = 200;
    },
  };
}

/** Runs `fn` once `signal` aborts (at once if it has). */
export function onAbort(signal: AbortSignal, fn: () => void): void {
  if (signal.aborted) fn();
  else signal.addEventListener('abort', fn, { once: true });
}

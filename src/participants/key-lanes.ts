/**
 * One task at a time per key, in arrival order: what keeps a message key's
 * publishes in order (broker-delivery.ts). A task waits for the previous one
 * of its key to settle; a waiter that gives up (deadline, cancel) leaves its
 * place without running, and the one after it still waits for the task
 * before — so order holds even when waiters leave.
 *
 * Memory is bounded by the keys with a task waiting or running: a key's
 * entry is dropped when its last task settles.
 */
export interface LaneWait {
  /** ms since epoch: give up waiting for the lane at this time. */
  deadline: number;
  signal?: AbortSignal;
}

export type LaneResult<T> = { ran: true; value: T } | { ran: false };

export class KeyLanes {
  private readonly tails = new Map<string, Promise<void>>();

  /** Keys with a task waiting or running (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }

  async run<T>(key: string, wait: LaneWait, task: () => Promise<T>): Promise<LaneResult<T>> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    // The next task waits for this one and, through it, for every one before.
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(key, tail);
    try {
      if (previous && !(await settlesInTime(previous, wait))) return { ran: false };
      return { ran: true, value: await task() };
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** True when `p` settles before the deadline and the signal. */
function settlesInTime(p: Promise<void>, wait: LaneWait): Promise<boolean> {
  if (wait.signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), Math.max(0, wait.deadline - Date.now()));
    const onAbort = () => done(false);
    wait.signal?.addEventListener('abort', onAbort, { once: true });
    function done(v: boolean) {
      clearTimeout(timer);
      wait.signal?.removeEventListener('abort', onAbort);
      resolve(v);
    }
    p.then(() => done(true), () => done(true));
  });
}

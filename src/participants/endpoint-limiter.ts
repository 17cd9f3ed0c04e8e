/**
 * Back-pressure towards participants: at most `max` calls in flight per gRPC
 * target; further calls wait in FIFO order (--max-calls-per-endpoint).
 * max = 0 means unlimited. Idle targets keep no state.
 */
import { setLongTimeout, type LongTimer } from '../controller/timers.js';

export class EndpointLimiter {
  private readonly slots = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(readonly max: number) {}

  /**
   * Resolves when the caller may call `target`; it must call the returned
   * release exactly once. Resolves undefined, holding no slot, when `signal`
   * aborts first or `deadline` (ms since epoch) passes first: the wait for a
   * slot counts against the call's own deadline.
   */
  async acquire(target: string, opts: { deadline?: number; signal?: AbortSignal } = {}): Promise<(() => void) | undefined> {
    if (this.max <= 0) return () => undefined;
    if (opts.signal?.aborted) return undefined;
    let s = this.slots.get(target);
    if (!s) {
      s = { active: 0, waiting: [] };
      this.slots.set(target, s);
    }
    const slot = s;
    const release = () => {
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const next = slot.waiting.shift();
        // The slot passes straight to the next waiter: active stays the same.
        if (next) next();
        else if (--slot.active === 0) this.slots.delete(target);
      };
    };
    if (slot.active < this.max) {
      slot.active++;
      return release();
    }
    return new Promise<(() => void) | undefined>((resolve) => {
      let timer: LongTimer | undefined;
      const giveUp = () => {
        const i = slot.waiting.indexOf(granted);
        if (i < 0) return;
        slot.waiting.splice(i, 1);
        cleanup();
        if (slot.active === 0 && slot.waiting.length === 0) this.slots.delete(target);
        resolve(undefined);
      };
      const cleanup = () => {
        timer?.clear();
        opts.signal?.removeEventListener('abort', giveUp);
      };
      const granted = () => {
        cleanup();
        resolve(release());
      };
      slot.waiting.push(granted);
      opts.signal?.addEventListener('abort', giveUp, { once: true });
      if (opts.deadline !== undefined) timer = setLongTimeout(giveUp, opts.deadline - Date.now());
    });
  }

  /** Calls in flight and waiting for `target` (for tests and metrics). */
  stats(target: string): { active: number; waiting: number } {
    const s = this.slots.get(target);
    return { active: s?.active ?? 0, waiting: s?.waiting.length ?? 0 };
  }

  /** Calls in flight and waiting, over every target (the flow-control gauge). */
  totals(): { active: number; waiting: number } {
    let active = 0;
    let waiting = 0;
    for (const s of this.slots.values()) {
      active += s.active;
      waiting += s.waiting.length;
    }
    return { active, waiting };
  }
}

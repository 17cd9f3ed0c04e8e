/**
 * Back-pressure towards participants: at most `max` calls in flight per gRPC
 * target; further calls wait in FIFO order (--max-calls-per-endpoint).
 * max = 0 means unlimited. Idle targets keep no state.
 */
export class EndpointLimiter {
  private readonly slots = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(readonly max: number) {}

  /** Resolves when the caller may call `target`; it must call the returned release exactly once. */
  async acquire(target: string): Promise<() => void> {
    if (this.max <= 0) return () => undefined;
    let s = this.slots.get(target);
    if (!s) {
      s = { active: 0, waiting: [] };
      this.slots.set(target, s);
    }
    if (s.active < this.max) s.active++;
    else await new Promise<void>((resolve) => s!.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = s!.waiting.shift();
      // The slot passes straight to the next waiter: active stays the same.
      if (next) next();
      else if (--s!.active === 0) this.slots.delete(target);
    };
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

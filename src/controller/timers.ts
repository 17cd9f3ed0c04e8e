/**
 * Timers that may be longer than Node's limit.
 *
 * Node's setTimeout/setInterval hold at most 2³¹−1 ms (24.8 days); a longer
 * delay is replaced by 1 ms with a TimeoutOverflowWarning. A tenant's
 * `ttlAfterFinished: 720h` or an operator's `--resync-period 1000h` would then
 * fire a thousand times a second. Every timer in the operator goes through
 * here: a long delay is waited in slices of at most MAX_TIMER_MS, re-armed
 * until the full delay has passed, so it fires once and on time.
 */

/** The longest delay Node's timers hold (2³¹−1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  /** Stops the timer; a no-op once it has fired. */
  clear(): void;
}

/**
 * Calls `fn` once, `delayMs` from now (NaN or negative: as soon as possible).
 * Unreferenced unless `ref`: a pending timer does not keep the process alive.
 */
export function setLongTimeout(fn: () => void, delayMs: number, now: () => number = Date.now, ref = false): LongTimer {
  const due = now() + (Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0);
  let handle: NodeJS.Timeout | undefined;
  let cleared = false;
  const arm = () => {
    const left = due - now();
    if (left <= 0) {
      handle = undefined;
      fn();
      return;
    }
    handle = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    if (!ref) handle.unref();
  };
  const left = due - now();
  handle = setTimeout(arm, Math.min(Math.max(left, 0), MAX_TIMER_MS));
  if (!ref) handle.unref();
  return {
    clear() {
      if (cleared) return;
      cleared = true;
      if (handle) clearTimeout(handle);
      handle = undefined;
    },
  };
}

/** Calls `fn` every `periodMs` (at least 1 ms), however long the period; `clear()` stops it. */
export function setLongInterval(fn: () => void, periodMs: number, now: () => number = Date.now): LongTimer {
  const period = Number.isFinite(periodMs) && periodMs >= 1 ? periodMs : 1;
  let current: LongTimer | undefined;
  let stopped = false;
  const next = () => {
    current = setLongTimeout(() => {
      if (stopped) return;
      next();
      fn();
    }, period, now);
  };
  next();
  return {
    clear() {
      stopped = true;
      current?.clear();
    },
  };
}

/** A promise that resolves after `ms`, however long; it keeps the process alive meanwhile, as setTimeout does. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setLongTimeout(resolve, ms, Date.now, true));
}

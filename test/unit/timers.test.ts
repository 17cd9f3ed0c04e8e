import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongInterval, setLongTimeout } from '../../src/controller/timers.js';

afterEach(() => vi.useRealTimers());

describe('long timers', () => {
  it('setLongTimeout(720 h) fires exactly once, at 720 h', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    setLongTimeout(fn, 720 * 3_600_000);
    vi.advanceTimersByTime(720 * 3_600_000 - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10 * MAX_TIMER_MS);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('clear() stops a long timeout mid-way', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const t = setLongTimeout(fn, 3 * MAX_TIMER_MS);
    vi.advanceTimersByTime(MAX_TIMER_MS + 5);
    t.clear();
    vi.advanceTimersByTime(5 * MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
  });

  it('setLongInterval(1000 h) ticks once per 1000 h (a --resync-period of 1000h)', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const t = setLongInterval(fn, 1000 * 3_600_000);
    vi.advanceTimersByTime(3000 * 3_600_000);
    expect(fn).toHaveBeenCalledTimes(3);
    t.clear();
    vi.advanceTimersByTime(3000 * 3_600_000);
    expect(fn).toHaveBeenCalledTimes(3);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { CallTracker } from '../../src/controller/call-tracker.js';
import type { Call, CallOutcome } from '../../src/engine/types.js';

const calls = (n: number): Call[] => Array.from({ length: n }, (_, i) => ({ branch: `b${i}`, method: 'Try', attempt: 1 }) as Call);

/** Settles the runner's calls from outside, as participants answering would. */
function controlled() {
  const pending: Array<() => void> = [];
  const aborted: string[] = [];
  const run = (call: Call, signal: AbortSignal): Promise<CallOutcome> =>
    new Promise((resolve) => {
      // What a real call holds on the batch's signal: one listener (the endpoint limiter's wait, then the call's cancel).
      const onAbort = () => {
        aborted.push(call.branch);
        resolve({ kind: 'retryable', message: 'cancelled' } as unknown as CallOutcome);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pending.push(() => resolve({ kind: 'ok' } as unknown as CallOutcome));
    });
  return { run, pending, aborted };
}

const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
afterEach(() => {
  process.off('warning', onWarning);
  warnings.length = 0;
});

/** Node emits warnings on a later tick: wait for the tracker to report the batch settled, then one macrotask. */
const settledThenTick = (tracker: CallTracker) => new Promise<void>((resolve) => (tracker.onSettled = () => setImmediate(resolve)));

describe('CallTracker', () => {
  it('a 64-call batch, one abort listener per call, without a MaxListenersExceededWarning', async () => {
    process.on('warning', onWarning);
    const tracker = new CallTracker();
    const c = controlled();
    const settled = settledThenTick(tracker);
    tracker.start('ns/t', 'uid-1', undefined, {}, calls(64), c.run);
    expect(c.pending).toHaveLength(64);
    c.pending.forEach((answer) => answer());
    await settled;
    expect(tracker.take('ns/t')?.outcomes).toHaveLength(64);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('cancel reaches every call of the batch, and its outcomes are never taken', async () => {
    const tracker = new CallTracker();
    const c = controlled();
    let settledCalls = 0;
    tracker.onSettled = () => settledCalls++;
    tracker.start('ns/t', 'uid-1', undefined, {}, calls(16), c.run);
    tracker.cancel('ns/t');
    await new Promise((r) => setImmediate(r));
    expect(c.aborted).toHaveLength(16);
    expect(settledCalls).toBe(0);
    expect(tracker.get('ns/t')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { ForwardAdmission, notStarted, waitMs } from '../../src/controller/admission.js';

const tx = (uid: string, mode: string, status?: DistributedTransaction['status'], namespace = 'n') =>
  ({ metadata: { uid, name: uid, namespace }, spec: { mode, branches: [] }, status }) as unknown as DistributedTransaction;

describe('ForwardAdmission', () => {
  it('counts the cache’s forward phase plus its own unseen admissions', () => {
    const cache: DistributedTransaction[] = [tx('t1', 'TCC', { phase: 'Trying' }), tx('s1', 'Saga', { phase: 'Executing' }), tx('c1', 'TCC', { phase: 'Confirming', decision: 'Confirm' }), tx('m1', 'Message', { phase: 'Trying' } as never)];
    const a = new ForwardAdmission(3, () => cache, () => 0);
    expect(a.count()).toBe(2);
    const fresh = tx('new1', 'TCC');
    expect(a.applies(fresh)).toBe(true);
    expect(a.admit(fresh)).toEqual({ admitted: true });
    expect(a.admit(fresh)).toEqual({ admitted: true }); // already admitted: not counted twice
    expect(a.admit(tx('new2', 'TCC'))).toEqual({ admitted: false, inForward: 3, max: 3 });
    // The cache shows new1 finished: its admission no longer counts.
    cache.push(tx('new1', 'TCC', { phase: 'Committed', decision: 'Confirm' }));
    expect(a.admit(tx('new2', 'TCC'))).toEqual({ admitted: true });
  });

  it('waiting() counts the cached transactions held back, not started or other ones', () => {
    const held = { phase: 'Pending', conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'WaitingForCapacity', message: '', lastTransitionTime: '' }] } as DistributedTransaction['status'];
    const cache = [tx('w1', 'TCC', held), tx('w2', 'Saga', held), tx('t1', 'TCC', { phase: 'Trying' }), tx('p1', 'TCC', { phase: 'Pending' }), tx('n1', 'Notify', held)];
    expect(new ForwardAdmission(1, () => cache).waiting()).toBe(2);
    expect(new ForwardAdmission(0, () => cache).waiting()).toBe(0); // flow control off
  });

  it('forgets admissions the cache never shows started', () => {
    let now = 0;
    const a = new ForwardAdmission(1, () => [], () => now);
    a.admit(tx('x', 'Saga'));
    expect(a.admit(tx('y', 'Saga')).admitted).toBe(false);
    now = 61_000;
    expect(a.admit(tx('y', 'Saga')).admitted).toBe(true);
  });

  it('does not limit Message/Notify or started transactions', () => {
    const a = new ForwardAdmission(1, () => [], () => 0);
    expect(a.applies(tx('m', 'Message'))).toBe(false);
    expect(a.applies(tx('n', 'Notify'))).toBe(false);
    expect(notStarted(tx('p', 'TCC', { phase: 'Pending', branches: [{ name: 'a', state: 'Trying', attempts: 1 }] } as never))).toBe(false);
    expect(notStarted(tx('p', 'TCC', { phase: 'Pending' }))).toBe(true);
    expect(new ForwardAdmission(0, () => [], () => 0).applies(tx('t', 'TCC'))).toBe(false);
  });

  it('waits 500–1000 ms, never past the forward deadline', () => {
    expect(waitMs(undefined, 0, () => 0)).toBe(500);
    expect(waitMs(undefined, 0, () => 0.999)).toBe(999);
    expect(waitMs(10_200, 10_000, () => 0.5)).toBe(200);
  });
});

describe('flow-control flags', () => {
  it('default to 32 / 0, accept 0, and reject ill-formed values naming the flag', async () => {
    const { parseFlags } = await import('../../src/cmd/flags.js');
    expect(parseFlags([], {})).toMatchObject({ maxCallsPerEndpoint: 32, maxForwardTransactions: 0 });
    expect(parseFlags(['--max-calls-per-endpoint', '0', '--max-forward-transactions', '50'], {})).toMatchObject({ maxCallsPerEndpoint: 0, maxForwardTransactions: 50 });
    expect(() => parseFlags(['--max-calls-per-endpoint', '-1'], {})).toThrow(/--max-calls-per-endpoint/);
    // Not flow control, but the same kind of operator-wide setting.
    expect(parseFlags([], {}).messageCheckTimeoutAction).toBe('Rollback');
    expect(parseFlags(['--message-check-timeout-action', 'Fail'], {}).messageCheckTimeoutAction).toBe('Fail');
    expect(() => parseFlags(['--message-check-timeout-action', 'fail'], {})).toThrow(/--message-check-timeout-action: want Rollback or Fail, got "fail"/);
    expect(() => parseFlags(['--max-forward-transactions=x'], {})).toThrow(/--max-forward-transactions: want an integer/);
  });

  it('shares the limit between namespaces: a namespace over its share yields the freed slot to one that waits', () => {
    // Namespace "busy" started first and took all 4 slots; 100 more of its transactions wait, and one of "quiet".
    const cache: DistributedTransaction[] = [
      ...Array.from({ length: 4 }, (_, i) => tx(`b${i}`, 'TCC', { phase: 'Trying' }, 'busy')),
      ...Array.from({ length: 100 }, (_, i) => tx(`bw${i}`, 'TCC', undefined, 'busy')),
      tx('q0', 'TCC', undefined, 'quiet'),
    ];
    const a = new ForwardAdmission(4, () => cache, () => 0);
    expect(a.admit(tx('q0', 'TCC', undefined, 'quiet')).admitted).toBe(false); // full
    cache.shift(); // one of busy's finishes: 3 in flight, share = 4 / 2 = 2
    expect(a.admit(tx('bw0', 'TCC', undefined, 'busy'))).toMatchObject({ admitted: false, share: 2 });
    expect(a.admit(tx('q0', 'TCC', undefined, 'quiet'))).toEqual({ admitted: true });
  });

  it('is work-conserving: with no other namespace waiting, one namespace may use every slot', () => {
    const cache = Array.from({ length: 3 }, (_, i) => tx(`b${i}`, 'TCC', { phase: 'Trying' }, 'busy'));
    const a = new ForwardAdmission(4, () => cache, () => 0);
    expect(a.admit(tx('b3', 'TCC', undefined, 'busy'))).toEqual({ admitted: true });
  });
});

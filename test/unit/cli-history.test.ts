import { describe, expect, it } from 'vitest';
import type { DistributedTransaction, TransactionStatus } from '../../src/api/types.js';
import { MAX_HISTORY, MAX_HISTORY_MESSAGE, makeStep, normalizeHistory, step, type CallOutcome } from '../../src/engine/index.js';
import { parseFlags } from '../../src/cmd/flags.js';
import type { Method } from '../../src/engine/types.js';

const stepAll = makeStep({ callHistory: 'all' });

const T0 = Date.parse('2026-01-01T00:00:00Z');

function tcc(): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: 't', namespace: 'n', uid: 'u', generation: 1, creationTimestamp: new Date(T0).toISOString() },
    spec: { mode: 'TCC', timeout: '1h', retry: { initialInterval: '1s', maxInterval: '1s' }, branches: [{ name: 'a', endpoint: { address: 'x:1' } }] },
  };
}

describe('per-branch call history', () => {
  it('records each answer with attempt, method, time, outcome, bounded message; keeps the last 10', () => {
    const tx = tcc();
    let now = T0;
    let out = step({ tx, status: undefined, outcomes: [], now });
    for (let i = 1; i <= 12; i++) {
      const call = out.calls[0]!;
      now += 2000;
      const o: CallOutcome = { branch: 'a', method: call.method, attempt: call.attempt, kind: 'retryable', message: `UNAVAILABLE ${i} ${'x'.repeat(400)}`, finishedAt: now - 1000 };
      out = step({ tx, status: out.status, outcomes: [o], now });
      if (out.calls.length === 0) out = step({ tx, status: out.status, outcomes: [], now: (now += 1500) });
    }
    const h = out.status.branches![0]!.history!;
    expect(h).toHaveLength(MAX_HISTORY);
    expect(h.map((r) => r.attempt)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(h[0]).toMatchObject({ method: 'Try', outcome: 'retryable' });
    expect(h[0]!.message!.length).toBe(MAX_HISTORY_MESSAGE);
    expect(h[0]!.message!.startsWith('UNAVAILABLE 3 ')).toBe(true);
    expect(h[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('a stale outcome (ignored by the mode) leaves the status exactly as it was: no write for history alone', () => {
    const tx = tcc();
    const step = stepAll;
    const first = step({ tx, status: undefined, outcomes: [], now: T0 });
    const ok = step({ tx, status: first.status, outcomes: [{ branch: 'a', method: 'Try', attempt: 1, kind: 'ok', finishedAt: T0 + 5 }], now: T0 + 10 });
    expect(ok.status.branches![0]!.history).toEqual([{ attempt: 1, method: 'Try', time: new Date(T0 + 5).toISOString(), outcome: 'ok' }]);
    const stale: CallOutcome = { branch: 'a', method: 'Try', attempt: 1, kind: 'retryable', message: 'late', finishedAt: T0 + 20 };
    const again = step({ tx, status: ok.status, outcomes: [stale], now: T0 + 30 });
    expect(again.status.branches![0]!.history).toEqual(ok.status.branches![0]!.history);
  });

  it('drops malformed stored records and bounds what it keeps', () => {
    const junk = [null, { attempt: -1, method: 'Try', time: '2026-01-01T00:00:00Z', outcome: 'ok' }, { attempt: 1, method: 'Try', time: 'yesterday', outcome: 'ok' }, 'x'];
    const good = Array.from({ length: 15 }, (_, i) => ({ attempt: i + 1, method: 'Try', time: '2026-01-01T00:00:00.000Z', outcome: 'ok', message: 'm'.repeat(500) }));
    const kept = normalizeHistory([...junk, ...good]);
    expect(kept.map((r) => r.attempt)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(kept.every((r) => r.message!.length === MAX_HISTORY_MESSAGE)).toBe(true);
    const status: TransactionStatus = { phase: 'Committed', branches: [{ name: 'a', state: 'Confirmed', attempts: 1, history: kept }] };
    expect(step({ tx: tcc(), status, outcomes: [], now: T0 }).status.branches![0]!.history).toEqual(kept);
  });

  describe('--call-history', () => {
    const ok = (method: Method, attempt: number, at: number): CallOutcome => ({ branch: 'a', method, attempt, kind: 'ok', finishedAt: at });
    const failed = (method: Method, attempt: number, at: number): CallOutcome => ({ branch: 'a', method, attempt, kind: 'retryable', message: 'UNAVAILABLE', finishedAt: at });

    /** Try ok, then Confirm answered by `confirms` in turn (each after its backoff), with the given engine. */
    function run(s: typeof step, confirms: Array<'ok' | 'fail'>) {
      const tx = tcc();
      let now = T0;
      let out = s({ tx, status: undefined, outcomes: [], now });
      out = s({ tx, status: out.status, outcomes: [ok('Try', 1, (now += 5))], now: (now += 5) });
      for (const answer of confirms) {
        while (out.calls.length === 0) out = s({ tx, status: out.status, outcomes: [], now: (now += 1000) });
        const call = out.calls[0]!;
        expect(call.method).toBe('Confirm');
        out = s({ tx, status: out.status, outcomes: [answer === 'ok' ? ok('Confirm', call.attempt, (now += 5)) : failed('Confirm', call.attempt, (now += 5))], now: (now += 5) });
      }
      return out.status;
    }
    const calls = (status: TransactionStatus) => status.branches![0]!.history?.map((h) => `${h.method}:${h.attempt}:${h.outcome}`);

    it('failures (the default): a branch whose calls all succeeded carries no history', () => {
      const status = run(step, ['ok']);
      expect(status.phase).toBe('Committed');
      expect(status.branches![0]).not.toHaveProperty('history');
      expect(calls(run(stepAll, ['ok']))).toEqual(['Try:1:ok', 'Confirm:1:ok']);
    });

    it('failures: the history starts at the first answer that was not ok and records every answer after it', () => {
      const status = run(step, ['fail', 'fail', 'ok']);
      expect(status.phase).toBe('Committed');
      expect(calls(status)).toEqual(['Confirm:1:retryable', 'Confirm:2:retryable', 'Confirm:3:ok']);
      expect(calls(run(stepAll, ['fail', 'fail', 'ok']))).toEqual(['Try:1:ok', 'Confirm:1:retryable', 'Confirm:2:retryable', 'Confirm:3:ok']);
    });

    it('failures: a history already stored (written under all) goes on with ok answers', () => {
      const tx = tcc();
      const first = stepAll({ tx, status: undefined, outcomes: [], now: T0 });
      const tried = stepAll({ tx, status: first.status, outcomes: [ok('Try', 1, T0 + 5)], now: T0 + 10 });
      const confirmed = step({ tx, status: tried.status, outcomes: [ok('Confirm', 1, T0 + 15)], now: T0 + 20 });
      expect(calls(confirmed.status)).toEqual(['Try:1:ok', 'Confirm:1:ok']);
    });

    it('the flag: failures by default, all on request, anything else refused naming the flag', () => {
      expect(parseFlags([], {}).callHistory).toBe('failures');
      expect(parseFlags(['--call-history', 'all'], {}).callHistory).toBe('all');
      expect(() => parseFlags(['--call-history', 'ok'], {})).toThrow('--call-history: want failures or all, got "ok"');
    });
  });
});

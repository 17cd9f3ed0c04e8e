/**
 * The travel-booking Saga example (examples/travel) end to end: the operator as
 * a process against the real API server, the flight, hotel and car services on
 * the SDK with the SQLite barrier. Car depends on flight; flight and hotel are
 * independent. Every call's arrival and answer is in each service's `calls`
 * table, stamped with one monotonic clock, so the tests check order from what
 * the participants saw, not from the operator's own account.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { DistributedTransaction } from '../../src/api/types.js';
import { bookingsOf, callsOf, freeOf, travelDbPathIn, TRAVEL_SEED, TRAVEL_SERVICES, type CallRecord, type TravelService } from '../../examples/travel/db.js';
import { clearTravelFaults, setTravelFault, startTravelService, type RunningTravelService } from '../../examples/travel/services.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

const DEFAULT_TTL = '2s';

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let operator: OperatorProcess;
const svc = {} as Record<TravelService, RunningTravelService>;

function trip(name: string, traveller: string, extra: Partial<DistributedTransaction['spec']> = {}): DistributedTransaction {
  const branch = (s: TravelService, dependsOn?: string[]) => ({
    name: s,
    endpoint: { address: `127.0.0.1:${svc[s].port}` },
    operation: `book-${s}`,
    payload: { traveller },
    callTimeout: '2s',
    ...(dependsOn ? { dependsOn } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'Saga',
      timeout: '30s',
      retry: { initialInterval: '100ms', maxInterval: '400ms', multiplier: 2, maxAttempts: 0 },
      // Kept unless a test says otherwise: the operator runs with a 2s default.
      ttlAfterFinished: '1h',
      branches: [branch('flight'), branch('hotel'), branch('car', ['flight'])],
      ...extra,
    },
  };
}

const until = (name: string, phases: string[], timeoutMs?: number) => txs.untilPhase(ns, name, phases, timeoutMs);

/** Every service's calls for one transaction, merged in time order. */
function calls(uid: string): Array<CallRecord & { service: TravelService }> {
  return TRAVEL_SERVICES.flatMap((s) => callsOf(svc[s].db, uid).map((c) => ({ ...c, service: s }))).sort((a, b) => a.at - b.at);
}

function at(cs: CallRecord[], branch: string, method: string, event: 'start' | 'end', which: 'first' | 'last' = 'first'): number {
  const hits = cs.filter((c) => c.branch === branch && c.method === method && c.event === event);
  const hit = which === 'first' ? hits[0] : hits[hits.length - 1];
  if (!hit) throw new Error(`no ${event} of ${branch}.${method} in ${JSON.stringify(cs)}`);
  return hit.at;
}

const free = () => Object.fromEntries(TRAVEL_SERVICES.map((s) => [s, freeOf(svc[s].db, TRAVEL_SEED[s].resource)]));
const SEEDED = Object.fromEntries(TRAVEL_SERVICES.map((s) => [s, TRAVEL_SEED[s].free]));

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'travel');
  txs = transactions(kc);
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-travel-'));
  const logger = pino({ level: 'silent' });
  for (const s of TRAVEL_SERVICES) {
    svc[s] = await startTravelService({ service: s, dbPath: travelDbPathIn(dir, s), address: '127.0.0.1:0', logger });
  }
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--default-ttl-after-finished', DEFAULT_TTL] });
});

afterAll(async () => {
  await operator?.kill();
  for (const s of TRAVEL_SERVICES) await svc[s]?.stop(0);
});

beforeEach(() => {
  // Each test starts from the seeded stock and no faults; bookings of earlier tests stay (keyed by uid).
  for (const s of TRAVEL_SERVICES) {
    clearTravelFaults(svc[s].db);
    svc[s].db.prepare(`UPDATE availability SET free = ?`).run(TRAVEL_SEED[s].free);
  }
});

describe('travel booking Saga (flight, hotel, car dependsOn flight)', () => {
  it('books all three: flight and hotel together, car only after flight answered → Completed', async () => {
    const created = await txs.create(trip('trip-ok', 'ana'));
    const tx = await until('trip-ok', ['Completed']);
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual([['flight', 'Executed'], ['hotel', 'Executed'], ['car', 'Executed']]);
    const cs = calls(created.metadata.uid);
    // Observed by the participants: car's Execute began after flight's had answered.
    expect(at(cs, 'car', 'Execute', 'start')).toBeGreaterThanOrEqual(at(cs, 'flight', 'Execute', 'end'));
    // flight and hotel had no dependency: both were called before car.
    expect(at(cs, 'hotel', 'Execute', 'start')).toBeLessThan(at(cs, 'car', 'Execute', 'start'));
    expect(cs.filter((c) => c.event === 'start').map((c) => c.method)).toEqual(['Execute', 'Execute', 'Execute']);
    expect(free()).toEqual({ flight: SEEDED.flight! - 1, hotel: SEEDED.hotel! - 1, car: SEEDED.car! - 1 });
    for (const s of TRAVEL_SERVICES) expect(bookingsOf(svc[s].db, created.metadata.uid).map((b) => b.state)).toEqual(['BOOKED']);
  });

  it('car refused after flight and hotel executed → both compensated, car never compensated, nothing left booked', async () => {
    svc.car.db.prepare(`UPDATE availability SET free = 0`).run(); // someone took the last car
    const created = await txs.create(trip('trip-no-car', 'rui'));
    const tx = await until('trip-no-car', ['Compensated']);
    expect(tx.status?.decision).toBe('Compensate');
    expect(tx.status?.message).toMatch(/car/);
    expect(tx.status?.message).toMatch(/no cars left at OPO/);
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual([['flight', 'Compensated'], ['hotel', 'Compensated'], ['car', 'Refused']]);
    const cs = calls(created.metadata.uid);
    const carRefused = at(cs, 'car', 'Execute', 'end');
    expect(cs.find((c) => c.branch === 'car' && c.method === 'Execute' && c.event === 'end')?.outcome).toBe('refused');
    expect(at(cs, 'flight', 'Compensate', 'start')).toBeGreaterThan(carRefused);
    expect(at(cs, 'hotel', 'Compensate', 'start')).toBeGreaterThan(carRefused);
    expect(cs.some((c) => c.branch === 'car' && c.method === 'Compensate')).toBe(false);
    expect(free()).toEqual({ flight: SEEDED.flight, hotel: SEEDED.hotel, car: 0 });
    expect(bookingsOf(svc.flight.db, created.metadata.uid).map((b) => b.state)).toEqual(['CANCELLED']);
    expect(bookingsOf(svc.hotel.db, created.metadata.uid).map((b) => b.state)).toEqual(['CANCELLED']);
  });

  it('hotel refused in the first wave → flight compensated, car (waiting on flight) never called', async () => {
    setTravelFault(svc.hotel.db, { method: 'Execute', mode: 'refuse' });
    const created = await txs.create(trip('trip-no-hotel', 'eva'));
    const tx = await until('trip-no-hotel', ['Compensated']);
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual([['flight', 'Compensated'], ['hotel', 'Refused'], ['car', 'Pending']]);
    expect(callsOf(svc.car.db, created.metadata.uid)).toEqual([]);
    expect(free()).toEqual(SEEDED);
  });

  it('car unreachable until the timeout → compensation in reverse dependency order: car before flight', async () => {
    // Every car Execute fails (retryable): car stays Executing (it may have happened) until the
    // Saga's timeout decides Compensate. Car depends on flight, so car is compensated first.
    setTravelFault(svc.car.db, { method: 'Execute', mode: 'fail' });
    const created = await txs.create(trip('trip-car-down', 'joao', { timeout: '3s' }));
    const tx = await until('trip-car-down', ['Compensated']);
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual([['flight', 'Compensated'], ['hotel', 'Compensated'], ['car', 'Compensated']]);
    const cs = calls(created.metadata.uid);
    expect(cs.filter((c) => c.branch === 'car' && c.method === 'Execute' && c.event === 'start').length).toBeGreaterThan(1);
    expect(at(cs, 'flight', 'Compensate', 'start')).toBeGreaterThanOrEqual(at(cs, 'car', 'Compensate', 'end', 'last'));
    // Car's Execute never committed: its Compensate is a null compensation (the barrier answers, nothing to undo).
    expect(cs.find((c) => c.branch === 'car' && c.method === 'Compensate' && c.event === 'end')?.outcome).toBe('null-compensation');
    expect(free()).toEqual(SEEDED);
  });

  it('a compensation that fails 5 times then succeeds → Compensated with 6 attempts, undone exactly once', async () => {
    setTravelFault(svc.car.db, { method: 'Execute', mode: 'refuse' });
    setTravelFault(svc.hotel.db, { method: 'Compensate', mode: 'fail', remaining: 5 });
    const created = await txs.create(trip('trip-comp-retry', 'lia'));
    const tx = await until('trip-comp-retry', ['Compensated']);
    const hotel = tx.status?.branches?.find((b) => b.name === 'hotel');
    expect(hotel?.state).toBe('Compensated');
    expect(hotel?.attempts).toBe(6);
    const hotelCompensates = callsOf(svc.hotel.db, created.metadata.uid).filter((c) => c.method === 'Compensate' && c.event === 'end');
    expect(hotelCompensates.map((c) => c.outcome)).toEqual(['error', 'error', 'error', 'error', 'error', 'executed']);
    expect(bookingsOf(svc.hotel.db, created.metadata.uid).map((b) => b.state)).toEqual(['CANCELLED']);
    expect(free()).toEqual({ ...SEEDED });
  });

  it('TTL: ttlAfterFinished deletes a finished trip after its time; the operator default applies when it is unset', async () => {
    svc.car.db.prepare(`UPDATE availability SET free = 2`).run(); // two trips, two cars
    const { ttlAfterFinished: _keep, ...withoutTtl } = trip('x', 'x').spec;
    const explicit = await txs.create(trip('trip-ttl-3s', 'ines', { ttlAfterFinished: '3s' }));
    const byDefault = await txs.create({ ...trip('trip-ttl-default', 'tiago'), spec: withoutTtl });
    expect(byDefault.spec.ttlAfterFinished).toBeUndefined();
    const seen: Record<string, { phase?: string; completed?: number; deleted?: number }> = { 'trip-ttl-3s': {}, 'trip-ttl-default': {} };
    await eventually('both TTL trips to be deleted', async () => {
      for (const name of Object.keys(seen)) {
        const s = seen[name]!;
        if (s.deleted) continue;
        try {
          const tx = await txs.get(ns, name);
          if (tx.status?.completionTime) s.completed = Date.parse(tx.status.completionTime);
          s.phase = tx.status?.phase;
        } catch (err) {
          if ((err as { code?: number }).code !== 404) throw err;
          s.deleted = Date.now();
        }
      }
      return Object.values(seen).every((s) => s.deleted) ? true : undefined;
    }, 60_000);
    // Both were seen Completed before being deleted, and were not deleted before their TTL.
    expect(seen['trip-ttl-3s']!.phase).toBe('Completed');
    expect(seen['trip-ttl-default']!.phase).toBe('Completed');
    expect(seen['trip-ttl-3s']!.deleted! - seen['trip-ttl-3s']!.completed!).toBeGreaterThanOrEqual(3_000);
    expect(seen['trip-ttl-default']!.deleted! - seen['trip-ttl-default']!.completed!).toBeGreaterThanOrEqual(2_000);
    // Deleted by the operator, which logged why.
    for (const uid of [explicit.metadata.uid, byDefault.metadata.uid]) {
      expect(TRAVEL_SERVICES.every((s) => bookingsOf(svc[s].db, uid)[0]?.state === 'BOOKED')).toBe(true);
    }
    await operator.waitForLog((l) => l.msg === 'deleted finished transaction (ttlAfterFinished)' && l.ttlMs === 3_000, 5_000);
    await operator.waitForLog((l) => l.msg === 'deleted finished transaction (ttlAfterFinished)' && l.ttlMs === 2_000, 5_000);
  });
});

/**
 * Runs the travel example's three booking services in one process:
 *
 *   npx tsx examples/travel/server.ts --base-port 50071 --host 127.0.0.1 --db-dir /tmp/travel
 *     flight :50071, hotel :50072, car :50073
 *
 * Options: --fault service.Method=mode[:count] (repeatable), e.g.
 * "car.Execute=refuse" (no cars left) or "hotel.Compensate=fail:5".
 * SIGTERM/SIGINT drain in-flight calls, then exit. Logs are JSON (pino).
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { isTravelService, travelDbPathIn, TRAVEL_SERVICES, type TravelService } from './db.js';
import { clearTravelFaults, setTravelFault, startTravelService, type TravelFault } from './services.js';

export function parseTravelFault(spec: string): { service: TravelService; fault: TravelFault } {
  const m = /^(\w+)\.(Execute|Compensate)=(refuse|fail)(?::(\d+))?$/.exec(spec);
  if (!m || !isTravelService(m[1]!)) {
    throw new Error(`--fault ${JSON.stringify(spec)}: expected service.Method=mode[:count], service one of ${TRAVEL_SERVICES.join(', ')}, Method Execute|Compensate, mode refuse|fail`);
  }
  return {
    service: m[1] as TravelService,
    fault: { method: m[2] as TravelFault['method'], mode: m[3] as TravelFault['mode'], ...(m[4] ? { remaining: Number(m[4]) } : {}) },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'base-port': { type: 'string', default: '50071' },
      host: { type: 'string', default: '0.0.0.0' },
      'db-dir': { type: 'string', default: '/tmp/kubetx-travel' },
      fault: { type: 'string', multiple: true, default: [] },
    },
  });
  let faults: ReturnType<typeof parseTravelFault>[];
  try {
    faults = values.fault!.map(parseTravelFault);
  } catch (err) {
    process.stderr.write(`travel server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const base = Number(values['base-port']);
  const dir = values['db-dir']!;
  mkdirSync(dir, { recursive: true });
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const services = await Promise.all(
    TRAVEL_SERVICES.map((service, i) =>
      startTravelService({ service, dbPath: travelDbPathIn(dir, service), address: `${values.host}:${base === 0 ? 0 : base + i}`, logger }),
    ),
  );
  for (const s of services) {
    clearTravelFaults(s.db);
    for (const f of faults.filter((f) => f.service === s.service)) setTravelFault(s.db, f.fault);
  }
  logger.info(Object.fromEntries(services.map((s) => [s.service, s.port])), 'travel services ready');
  const stop = async () => {
    await Promise.all(services.map((s) => s.stop(2_000)));
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();

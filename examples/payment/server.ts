/**
 * The payment example's participants: each service is a TccParticipant and a
 * SagaParticipant gRPC server (one port) on the kubetx SDK, with its own SQLite
 * file and the SQLite barrier.
 *
 *   npx tsx examples/payment/server.ts --service inventory --port 50052 --db /tmp/pay/inventory.db
 *   npx tsx examples/payment/server.ts --all --base-port 50051 --db-dir /tmp/pay
 *       (order 50051, inventory 50052, credit 50053, warehouse 50054, in one process)
 *
 * Options: --host (default 0.0.0.0), --fault SPEC (repeatable; see faults.ts),
 * --clear-faults, --conformance-hook (or env KUBETX_CONFORMANCE_HOOK=1: the
 * conformance kit's hook on inventory, test deployments only; conformance-hook.ts);
 * env PAYMENT_FAULTS="inventory.Try=refuse,Confirm=fail:3" does
 * the same as --fault. SIGTERM/SIGINT drain in-flight calls, then exit.
 * Prints one JSON log line per call; the "payment service ready" line carries the port.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { addConformanceHook, serveParticipant, type Participant } from '../../sdk/typescript/src/index.js';
import { conformanceHookFromEnv, paymentConformanceHook } from './conformance-hook.js';
import { dbPathIn, DEFAULT_PORTS, isServiceName, openServiceDb, SERVICES, type ServiceDb, type ServiceName } from './db.js';
import { clearFaultsIn, faultMiddleware, parseFaultSpec, setFaultIn, type Fault, type FaultMiddlewareOptions } from './faults.js';
import { SAGA_HANDLERS, TCC_HANDLERS } from './services.js';

export interface StartServiceOptions {
  service: ServiceName;
  dbPath: string;
  /** host:port; "127.0.0.1:0" picks a free port. @default "0.0.0.0:<DEFAULT_PORTS[service]>" */
  address?: string;
  logger?: Logger;
  handleSignals?: boolean;
  /** Faults to set at startup (they stay in the database until cleared). */
  faults?: Fault[];
  clearFaults?: boolean;
  /** Passed to the fault middleware (tests replace process.exit). */
  faultOptions?: FaultMiddlewareOptions;
  /** Serve the conformance kit's hook (conformance-hook.ts; test deployments only). @default env KUBETX_CONFORMANCE_HOOK=1 */
  conformanceHook?: boolean;
}

export interface RunningService extends ServiceDb {
  port: number;
  participant: Participant;
  /** Drains the server, then closes the database. */
  stop(graceMs?: number): Promise<void>;
}

export async function startService(opts: StartServiceOptions): Promise<RunningService> {
  const sdb = openServiceDb(opts.service, opts.dbPath);
  if (opts.clearFaults) clearFaultsIn(sdb.db);
  for (const f of opts.faults ?? []) setFaultIn(sdb.db, f);
  const logger = (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ service: opts.service });
  let participant: Participant;
  try {
    participant = await serveParticipant({
      address: opts.address ?? `0.0.0.0:${DEFAULT_PORTS[opts.service]}`,
      tcc: TCC_HANDLERS[opts.service],
      saga: SAGA_HANDLERS[opts.service],
      barrier: sdb.barrier,
      middleware: faultMiddleware(sdb.db, opts.faultOptions),
      logger,
      handleSignals: opts.handleSignals ?? false,
    });
  } catch (err) {
    sdb.db.close();
    throw err;
  }
  if (opts.conformanceHook ?? conformanceHookFromEnv()) {
    const hook = paymentConformanceHook(opts.service, sdb.db);
    if (hook) addConformanceHook(participant.server, hook);
    logger.warn({ served: hook !== undefined }, 'conformance hook requested: for test deployments only');
  }
  logger.info({ port: participant.port, db: opts.dbPath }, 'payment service ready');
  let stopped: Promise<void> | undefined;
  return {
    ...sdb,
    port: participant.port,
    participant,
    stop: (graceMs = 5000) =>
      (stopped ??= participant.shutdown(graceMs).then(() => {
        sdb.db.close();
      })),
  };
}

export interface StartAllOptions {
  dbDir: string;
  /** order gets basePort, inventory +1, credit +2, warehouse +3; 0 = free ports. @default 50051 */
  basePort?: number;
  /** @default "0.0.0.0" */
  host?: string;
  logger?: Logger;
  faults?: Partial<Record<ServiceName, Fault[]>>;
  clearFaults?: boolean;
  faultOptions?: FaultMiddlewareOptions;
}

/** All four services in one process (their databases are <dbDir>/<service>.db). */
export async function startAll(opts: StartAllOptions): Promise<Record<ServiceName, RunningService>> {
  const base = opts.basePort ?? 50051;
  const host = opts.host ?? '0.0.0.0';
  const out: Partial<Record<ServiceName, RunningService>> = {};
  try {
    for (const [i, service] of SERVICES.entries()) {
      const o: StartServiceOptions = {
        service,
        dbPath: dbPathIn(opts.dbDir, service),
        address: `${host}:${base === 0 ? 0 : base + i}`,
        faults: opts.faults?.[service] ?? [],
      };
      if (opts.logger) o.logger = opts.logger;
      if (opts.clearFaults) o.clearFaults = true;
      if (opts.faultOptions) o.faultOptions = opts.faultOptions;
      out[service] = await startService(o);
    }
  } catch (err) {
    await Promise.all(Object.values(out).map((s) => s.stop(0)));
    throw err;
  }
  return out as Record<ServiceName, RunningService>;
}

/** Groups fault specs by service; a spec without a service applies to `defaultServices`. */
function faultsBySpec(specs: string[], defaultServices: readonly ServiceName[]): Partial<Record<ServiceName, Fault[]>> {
  const out: Partial<Record<ServiceName, Fault[]>> = {};
  for (const spec of specs) {
    const { service, fault } = parseFaultSpec(spec);
    for (const s of service ? [service] : defaultServices) (out[s] ??= []).push(fault);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      service: { type: 'string' },
      all: { type: 'boolean' },
      port: { type: 'string' },
      'base-port': { type: 'string' },
      host: { type: 'string', default: '0.0.0.0' },
      db: { type: 'string' },
      'db-dir': { type: 'string' },
      fault: { type: 'string', multiple: true },
      'clear-faults': { type: 'boolean' },
      'conformance-hook': { type: 'boolean' },
    },
  });
  if (values['conformance-hook']) process.env.KUBETX_CONFORMANCE_HOOK = '1';
  const specs = [
    ...(process.env.PAYMENT_FAULTS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    ...(values.fault ?? []),
  ];
  const host = values.host ?? '0.0.0.0';
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });

  let running: RunningService[];
  if (values.all) {
    const dbDir = values['db-dir'] ?? './payment-data';
    const o: StartAllOptions = { dbDir, host, logger, faults: faultsBySpec(specs, SERVICES) };
    if (values['base-port'] !== undefined) o.basePort = Number(values['base-port']);
    if (values['clear-faults']) o.clearFaults = true;
    running = Object.values(await startAll(o));
  } else {
    const service = values.service;
    if (!service || !isServiceName(service)) {
      throw new Error(`usage: server.ts --service ${SERVICES.join('|')} [--port N] [--db FILE] | --all [--base-port N] [--db-dir DIR]`);
    }
    const port = values.port !== undefined ? Number(values.port) : DEFAULT_PORTS[service];
    const dbPath = values.db ?? dbPathIn(values['db-dir'] ?? './payment-data', service);
    running = [
      await startService({
        service,
        dbPath,
        address: `${host}:${port}`,
        logger,
        faults: faultsBySpec(specs, [service])[service] ?? [],
        clearFaults: values['clear-faults'] ?? false,
      }),
    ];
  }

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'draining payment services');
    void Promise.all(running.map((s) => s.stop(10_000))).then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  });
}

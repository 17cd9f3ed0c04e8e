/**
 * bank-ts, the kubetx example participant in TypeScript: one bank, whose
 * accounts live in PostgreSQL, serving the classic transfer's two halves
 * (TransOut, TransIn) as TCC and as Saga through the SDK's PgBarrier. Two
 * processes (two banks) and one DistributedTransaction make a transfer; the
 * same bank as examples/bank-go, flag for flag. See README.md.
 *
 *   npx tsx examples/bank-ts/server.ts --bank alpha --listen 127.0.0.1:50101 \
 *     --database-url 'postgres://bank@localhost:5432/bank_alpha?sslmode=disable'
 *
 * Logs: pino JSON on stdout, one line per call from the SDK, never a payload;
 * "bank listening" carries the bound address. SIGTERM/SIGINT: stop taking
 * calls, let those in flight finish for --shutdown-grace, exit 0.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { addConformanceHook, serveParticipant, type Participant } from '../../sdk/typescript/src/index.js';
import { PgBarrier } from '../../sdk/typescript/src/pg.js';
import { Bank, migrate, OP_TRANS_OUT } from './bank.js';
import { faultMiddleware } from './faults.js';
import { bankHook, CONFORMANCE_OPERATION } from './hook.js';

export interface BankConfig {
  bank: string;
  listen: string;
  databaseUrl: string;
  conformanceHook: boolean;
  faultRate: number;
  /** 0 = from the clock. */
  faultSeed: bigint;
  maxConns: number;
  shutdownGraceMs: number;
}

const USAGE = `usage: server.ts --bank NAME --database-url URL [--listen HOST:PORT] [--conformance-hook]
  [--fault-rate F] [--fault-seed N] [--max-conns N] [--shutdown-grace DURATION]
Every flag but the last two can be set as KUBETX_BANK_<NAME> (NAME, LISTEN, DATABASE_URL,
CONFORMANCE_HOOK, FAULT_RATE, FAULT_SEED).`;

/** Flags, else KUBETX_BANK_* from `env`, else the defaults (bank-go's). */
export function parseConfig(args: string[], env: NodeJS.ProcessEnv = process.env): BankConfig {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      bank: { type: 'string' },
      listen: { type: 'string' },
      'database-url': { type: 'string' },
      'conformance-hook': { type: 'boolean' },
      'fault-rate': { type: 'string' },
      'fault-seed': { type: 'string' },
      'max-conns': { type: 'string' },
      'shutdown-grace': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new UsageError(USAGE, 0);
  const envOr = (name: string, def: string) => env[`KUBETX_BANK_${name}`] ?? def;
  const faultRate = Number(values['fault-rate'] ?? envOr('FAULT_RATE', '0'));
  const seedText = values['fault-seed'] ?? envOr('FAULT_SEED', '0');
  const maxConns = Number(values['max-conns'] ?? '20');
  const c: BankConfig = {
    bank: values.bank ?? envOr('NAME', ''),
    listen: values.listen ?? envOr('LISTEN', ':50051'),
    databaseUrl: values['database-url'] ?? envOr('DATABASE_URL', ''),
    conformanceHook: values['conformance-hook'] ?? /^(1|t|true)$/i.test(envOr('CONFORMANCE_HOOK', 'false')),
    faultRate,
    faultSeed: /^\d+$/.test(seedText) ? BigInt(seedText) : -1n,
    maxConns,
    shutdownGraceMs: parseDuration(values['shutdown-grace'] ?? '10s'),
  };
  if (!c.bank) throw new UsageError('--bank is required');
  if (!c.databaseUrl) throw new UsageError('--database-url is required');
  if (!(faultRate >= 0 && faultRate <= 1)) throw new UsageError(`--fault-rate must be between 0 and 1, got ${values['fault-rate'] ?? envOr('FAULT_RATE', '')}`);
  if (c.faultSeed < 0n) throw new UsageError(`--fault-seed must be a non-negative integer, got ${seedText}`);
  if (!(Number.isSafeInteger(maxConns) && maxConns > 0)) throw new UsageError(`--max-conns must be a positive integer, got ${values['max-conns']}`);
  if (c.faultSeed === 0n) c.faultSeed = BigInt(Date.now()) * 1_000_000n + BigInt(process.hrtime()[1]);
  return c;
}

export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("10s", "500ms", "1m30s") in milliseconds. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (text === '0') return 0;
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`invalid duration ${JSON.stringify(text)} (e.g. 10s, 500ms, 1m30s)`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0);
}

/** Go's ":50051" (every interface) in grpc-js's terms. */
function bindAddress(listen: string): { bind: string; host: string } {
  const i = listen.lastIndexOf(':');
  if (i < 0) throw new UsageError(`--listen must be HOST:PORT or :PORT, got ${listen}`);
  const host = listen.slice(0, i) || '0.0.0.0';
  return { bind: `${host}:${listen.slice(i + 1)}`, host };
}

export interface RunningBank {
  participant: Participant;
  /** host:port actually bound (port 0 resolved). */
  address: string;
  /** Drains in-flight calls (up to the grace), then closes the pool. */
  stop(): Promise<void>;
}

export async function startBank(cfg: BankConfig, logger: Logger): Promise<RunningBank> {
  const { bind, host } = bindAddress(cfg.listen);
  const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: cfg.maxConns });
  // An idle connection that breaks (the server restarted) must not take the process down.
  pool.on('error', (err) => logger.warn({ err }, 'database connection lost'));
  try {
    await migrate(pool);
    const barrier = new PgBarrier(pool);
    await barrier.init();
    const bank = new Bank({
      name: cfg.bank,
      // The kit names its operation "conformance"; its semantics are TransOut's (hook.proto).
      ...(cfg.conformanceHook ? { aliases: { [CONFORMANCE_OPERATION]: OP_TRANS_OUT } } : {}),
    });
    if (cfg.faultRate > 0) logger.warn({ rate: cfg.faultRate, seed: cfg.faultSeed.toString() }, 'fault injection on');
    logger.info({ listen: cfg.listen, conformanceHook: cfg.conformanceHook }, 'bank starting');
    const participant = await serveParticipant<pg.PoolClient>({
      address: bind,
      barrier,
      tcc: bank.tcc,
      saga: bank.saga,
      ...(cfg.faultRate > 0 ? { middleware: faultMiddleware<pg.PoolClient>(cfg.faultRate, cfg.faultSeed, logger) } : {}),
      logger,
    });
    if (cfg.conformanceHook) {
      addConformanceHook(participant.server, bankHook(pool));
      logger.warn('serving the conformance hook: anyone reaching this port can open accounts');
    }
    const address = `${host}:${participant.port}`;
    logger.info({ address }, 'bank listening');
    let stopped: Promise<void> | undefined;
    return {
      participant,
      address,
      stop: () => (stopped ??= participant.shutdown(cfg.shutdownGraceMs).then(() => pool.end())),
    };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

async function main(): Promise<void> {
  let cfg: BankConfig;
  try {
    cfg = parseConfig(process.argv.slice(2));
  } catch (err) {
    const code = err instanceof UsageError ? err.exitCode : 2;
    (code === 0 ? process.stdout : process.stderr).write(`${code === 0 ? '' : 'bank-ts: '}${(err as Error).message}\n`);
    process.exit(code);
  }
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { bank: cfg.bank } });
  let bank: RunningBank;
  try {
    bank = await startBank(cfg, logger);
  } catch (err) {
    logger.error({ err }, 'bank stopped');
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: stopping at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: cfg.shutdownGraceMs }, 'bank stopping');
    bank.stop().then(
      () => {
        logger.info('bank stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'bank stopped');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}

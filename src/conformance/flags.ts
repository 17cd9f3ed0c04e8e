/**
 * The kit's command line: `kubetx-conformance --target host:port --services
 * tcc,saga,receiver,source [...]`, parsed into `KitOptions` or a `UsageError`
 * (exit code 2).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { TlsFiles } from './client.js';

export type ServiceGroup = 'tcc' | 'saga' | 'receiver' | 'source';
export const SERVICE_GROUPS: readonly ServiceGroup[] = ['tcc', 'saga', 'receiver', 'source'];

/** The default `--payload` template. */
export const DEFAULT_PAYLOAD = '{"account":"$ACCOUNT","amount":$AMOUNT}';

export interface KitOptions {
  /** host:port of the participant's services. */
  target: string;
  /** host:port of its ConformanceHook. @default target */
  hook: string;
  services: ServiceGroup[];
  /** TLS client settings; undefined = plaintext. */
  tls?: TlsFiles;
  /** BranchRequest.payload with $ACCOUNT and $AMOUNT replaced. @default DEFAULT_PAYLOAD */
  payload: string;
  /** Race calls in flight at once. @default 32 */
  concurrency: number;
  /** Transactions per race rule. @default 100 */
  raceRounds: number;
  /** Deadline of every single call, ms. @default 5000 */
  deadlineMs: number;
  json: boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** --help: print the usage and exit 0. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
}

export const USAGE = `usage: kubetx-conformance --target host:port --services tcc,saga,receiver,source
  [--hook host:port]            the ConformanceHook (default: --target)
  [--tls-ca FILE --tls-cert FILE --tls-key FILE --tls-server-name NAME | --insecure]   (default plaintext)
  [--payload TEMPLATE]          with $ACCOUNT and $AMOUNT (default ${DEFAULT_PAYLOAD})
  [--concurrency 32] [--race-rounds 100] [--deadline 5s] [--json]
exit code: 0 every rule passed, 1 a rule failed, 2 bad flags or target unreachable`;

/** "5s", "500ms", "1m", "1.5s" → ms. */
export function parseDurationFlag(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s.trim());
  if (!m) throw new UsageError(`--deadline ${JSON.stringify(s)}: want a duration like 500ms, 5s or 1m`);
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  if (!(n >= 10)) throw new UsageError(`--deadline ${s}: at least 10ms`);
  return n;
}

function positiveInt(flag: string, s: string | undefined, def: number): number {
  if (s === undefined) return def;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${flag} ${JSON.stringify(s)}: want a positive integer`);
  return n;
}

function address(flag: string, s: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s) && !s.startsWith('unix:')) {
    throw new UsageError(`--${flag} ${JSON.stringify(s)}: want host:port`);
  }
  return s;
}

export function parseFlags(argv: string[]): KitOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        target: { type: 'string' },
        hook: { type: 'string' },
        services: { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-server-name': { type: 'string' },
        insecure: { type: 'boolean' },
        payload: { type: 'string' },
        concurrency: { type: 'string' },
        'race-rounds': { type: 'string' },
        deadline: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) throw new HelpRequested(USAGE);
  if (!values.target) throw new UsageError('--target is required');
  if (!values.services) throw new UsageError('--services is required (a list of tcc, saga, receiver, source)');
  const services = [...new Set(values.services.split(',').map((s) => s.trim()).filter(Boolean))];
  for (const s of services) {
    if (!(SERVICE_GROUPS as readonly string[]).includes(s)) throw new UsageError(`--services: unknown ${JSON.stringify(s)}; want tcc, saga, receiver, source`);
  }
  if (services.length === 0) throw new UsageError('--services is empty');

  const tlsFlags = values['tls-ca'] ?? values['tls-cert'] ?? values['tls-key'] ?? values['tls-server-name'];
  if (tlsFlags !== undefined && values.insecure) throw new UsageError('--insecure and --tls-* exclude each other');
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  let tls: TlsFiles | undefined;
  if (tlsFlags !== undefined) {
    tls = {};
    for (const [flag, key] of [['tls-ca', 'ca'], ['tls-cert', 'cert'], ['tls-key', 'key']] as const) {
      const f = values[flag];
      if (f === undefined) continue;
      if (!existsSync(f)) throw new UsageError(`--${flag} ${f}: no such file`);
      tls[key] = f;
    }
    if (values['tls-server-name']) tls.serverName = values['tls-server-name'];
  }

  const payload = values.payload ?? DEFAULT_PAYLOAD;
  if (!payload.includes('$ACCOUNT') || !payload.includes('$AMOUNT')) throw new UsageError('--payload must contain $ACCOUNT and $AMOUNT');
  try {
    JSON.parse(renderPayload(payload, '123', 1));
  } catch (err) {
    throw new UsageError(`--payload is not JSON once filled in: ${(err as Error).message}`);
  }

  const target = address('target', values.target);
  const opts: KitOptions = {
    target,
    hook: values.hook ? address('hook', values.hook) : target,
    services: services as ServiceGroup[],
    payload,
    concurrency: positiveInt('concurrency', values.concurrency, 32),
    raceRounds: positiveInt('race-rounds', values['race-rounds'], 100),
    deadlineMs: values.deadline === undefined ? 5000 : parseDurationFlag(values.deadline),
    json: values.json ?? false,
  };
  if (tls) opts.tls = tls;
  return opts;
}

/** The payload template filled in. Account ids are decimal digits, so they fit a JSON string or number. */
export function renderPayload(template: string, account: string, amount: number): string {
  return template.replaceAll('$ACCOUNT', account).replaceAll('$AMOUNT', String(amount));
}

/**
 * The logger serveParticipant writes through: an interface, so the SDK does
 * not depend on a logging library. A pino logger fits it as it is
 * (`serveParticipant({ logger: pino() })`), and so does anything with pino's
 * `info(obj, msg)` / `info(msg)` shape and a `child(bindings)`.
 *
 * Without one, serveParticipant writes JSON lines to stdout in pino's layout
 * (`level` as a number, `time` in ms, `pid`, `hostname`, `name`, the
 * bindings, the fields, `msg`) at the level in LOG_LEVEL (default "info";
 * "silent" writes nothing).
 */
import { hostname } from 'node:os';

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LEVELS;

export interface JsonLoggerOptions {
  /** @default "kubetx-participant" */
  name?: string;
  /** @default LOG_LEVEL or "info" */
  level?: LogLevel;
  /** @default a line to process.stdout */
  write?: (line: string) => void;
}

/** The default logger: pino-shaped JSON lines, one per call, synchronous. */
export function jsonLogger(options: JsonLoggerOptions = {}): Logger {
  const env = process.env.LOG_LEVEL as LogLevel | undefined;
  const min = LEVELS[options.level ?? (env && env in LEVELS ? env : 'info')];
  const base = { pid: process.pid, hostname: hostname(), name: options.name ?? 'kubetx-participant' };
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  const make = (bindings: Record<string, unknown>): Logger => {
    const at = (level: number): LogFn =>
      ((objOrMsg: object | string, msg?: string) => {
        if (level < min) return;
        const fields = typeof objOrMsg === 'string' ? {} : serializeErrors(objOrMsg);
        const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
        write(`${stringify({ level, time: Date.now(), ...base, ...bindings, ...fields, ...(text === undefined ? {} : { msg: text }) })}\n`);
      }) as LogFn;
    return {
      debug: at(LEVELS.debug),
      info: at(LEVELS.info),
      warn: at(LEVELS.warn),
      error: at(LEVELS.error),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}

function serializeErrors(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = v instanceof Error ? { type: v.name, message: v.message, stack: v.stack } : v;
  }
  return out;
}

function stringify(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return JSON.stringify({ level: 50, time: Date.now(), msg: 'log line not serializable' });
  }
}

/**
 * A throwaway Redis server for tests: Debian's redis-server (hack/redis.sh) on a
 * free loopback port, with its own directory, no RDB snapshots and the
 * append-only file on, so `kill()` (SIGKILL) followed by `restart()` (same port,
 * same directory) keeps every write the server had acknowledged: Redis writes
 * the AOF before it replies, and a killed process loses nothing the kernel has.
 * Readiness is a PING answered with PONG (not LOADING); no fixed sleeps.
 *
 * Binary: $REDIS_BIN/redis-server, else /usr/bin, /usr/local/bin, PATH.
 * No stray servers: the same guards as test/support/nats.ts (exit handler and a
 * detached reaper that SIGKILLs the server if this process dies).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './control-plane.js';
import { startReaper, waitUntil } from './nats.js';

export interface RedisServer {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** The server's working directory (append-only file, log); kept across kill() and restart(). */
  readonly dir: string;
  /** The running server's pid, undefined while it is down. */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs the server and waits for it to be gone; the data directory stays. */
  kill(): Promise<void>;
  /** Stops the server if it is running (SIGTERM), starts it again on the same port and directory. */
  restart(): Promise<void>;
  logTail(lines?: number): string;
}

export interface StartRedisOptions {
  /** `appendfsync` (fsync policy; irrelevant to a process crash, only to a machine crash). @default "everysec" */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Extra redis-server arguments, e.g. ['--maxmemory', '64mb']. */
  args?: string[];
  /** How long to wait for PONG. @default 30_000 */
  startTimeoutMs?: number;
}

/** The redis-server binary, or an Error naming the command to run. */
export function redisServerBin(): string {
  const dirs = [process.env.REDIS_BIN, '/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')];
  for (const d of dirs) if (d && existsSync(join(d, 'redis-server'))) return join(d, 'redis-server');
  throw new Error('redis-server not found in $REDIS_BIN, /usr/bin, /usr/local/bin or PATH; install it with: bash hack/redis.sh');
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = redisServerBin();
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-redis-'));
  const logFile = join(dir, 'redis.log');
  const pidFile = join(dir, 'server.pid');

  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const killSync = () => {
    if (running()) child!.kill('SIGKILL');
  };
  process.on('exit', killSync);
  const reaper = startReaper(dir, pidFile);

  const logTail = (lines = 30) => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  };

  const launch = async (port: number) => {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'yes',
      '--appendfsync', options.appendfsync ?? 'everysec',
      '--daemonize', 'no',
      '--logfile', '',
      ...(options.args ?? []),
    ];
    const fd = openSync(logFile, 'a');
    const c = spawn(bin, args, { cwd: dir, stdio: ['ignore', fd, fd] });
    child = c;
    writeFileSync(pidFile, String(c.pid ?? ''));
    await waitUntil(`redis-server on 127.0.0.1:${port}`, c, timeoutMs, () => pong(port), logTail);
  };

  const terminate = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  let port = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      [port] = (await freePorts(1)) as [number];
      try {
        await launch(port);
        break;
      } catch (err) {
        await terminate('SIGKILL');
        if (attempt >= 3 || !/exited/.test((err as Error).message)) throw err;
      }
    }
  } catch (err) {
    await terminate('SIGKILL');
    reaper.stop();
    process.off('exit', killSync);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return running() ? child!.pid : undefined;
    },
    logTail,
    stop() {
      stopped ??= (async () => {
        await terminate('SIGTERM');
        reaper.stop();
        process.off('exit', killSync);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    kill: () => terminate('SIGKILL'),
    async restart() {
      if (stopped) throw new Error('redis-server: restart() after stop()');
      await terminate('SIGTERM');
      await launch(port);
    },
  };
}

/** True once the server answers PING with PONG (a server still loading its AOF answers -LOADING). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2_000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

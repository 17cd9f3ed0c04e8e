/**
 * A throwaway NATS server for tests: the nats-server that hack/nats.sh built
 * (version pinned in hack/testenv.env as NATS_SERVER_VERSION), on free loopback
 * ports, JetStream on with its store in a temporary directory.
 *
 * `kill()` SIGKILLs it (a crash: nothing is flushed or shut down cleanly) and
 * `restart()` starts it again on the same port with the same store directory,
 * so streams, consumers and messages written before the crash are still there.
 * Readiness is the monitoring endpoint's `/healthz`, which answers 200 only once
 * JetStream has recovered its streams and consumers; no fixed sleeps.
 *
 * No stray servers: besides `stop()`, the process's exit kills the server, and
 * a detached reaper shell SIGKILLs it and removes the directory within a second
 * or two of this process dying any other way (SIGKILL, a killed test worker).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './control-plane.js';
import { repoRoot } from './testenv-paths.js';

export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** The HTTP monitoring port (/healthz, /jsz, /varz). */
  readonly monitorPort: number;
  /** JetStream's store directory; kept across kill() and restart(). */
  readonly storeDir: string;
  /** The server's temporary directory (config, log, store). */
  readonly dir: string;
  /** The running server's pid, undefined while it is down. */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs the server and waits for it to be gone; the store directory stays. */
  kill(): Promise<void>;
  /** Stops the server if it is running (SIGTERM), starts it again on the same port and store; `config` replaces the extra configuration lines. */
  restart(config?: string[]): Promise<void>;
  /** The last lines of the server's log, for error messages. */
  logTail(lines?: number): string;
}

export interface StartNatsOptions {
  /** Turn JetStream on (file storage in `storeDir`). @default true */
  jetstream?: boolean;
  /** Extra lines for the server's configuration file. */
  config?: string[];
  /** How long to wait for the server to be healthy. @default 30_000 */
  startTimeoutMs?: number;
}

/** The nats-server binary hack/nats.sh built, or an Error naming the command to run. */
export function natsServerBin(): string {
  const text = readFileSync(join(repoRoot, 'hack/testenv.env'), 'utf8');
  const version = /^NATS_SERVER_VERSION=(\S+)$/m.exec(text)?.[1];
  if (!version) throw new Error('hack/testenv.env: NATS_SERVER_VERSION is not set');
  const cacheRoot =
    process.env.KUBETX_TESTENV_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kubetx/testenv');
  const bin = join(cacheRoot, `nats-server-${version}`, 'bin', 'nats-server');
  if (!existsSync(bin)) throw new Error(`nats-server ${version}: ${bin} is missing; build it with: bash hack/nats.sh`);
  return bin;
}

export async function startNats(options: StartNatsOptions = {}): Promise<NatsServer> {
  const bin = natsServerBin();
  const jetstream = options.jetstream ?? true;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-nats-'));
  const storeDir = join(dir, 'jetstream');
  mkdirSync(storeDir);
  const configFile = join(dir, 'nats.conf');
  let extra = options.config ?? [];
  const logFile = join(dir, 'nats.log');
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

  const launch = async (port: number, monitorPort: number) => {
    writeFileSync(
      configFile,
      [
        'server_name: kubetx-test',
        `listen: "127.0.0.1:${port}"`,
        `http: "127.0.0.1:${monitorPort}"`,
        ...(jetstream ? [`jetstream { store_dir: ${JSON.stringify(storeDir)} }`] : []),
        ...extra,
        '',
      ].join('\n'),
    );
    const fd = openSync(logFile, 'a');
    const c = spawn(bin, ['-c', configFile], { stdio: ['ignore', fd, fd] });
    child = c;
    writeFileSync(pidFile, String(c.pid ?? ''));
    await waitUntil(`nats-server on 127.0.0.1:${port}`, c, timeoutMs, () => httpOk(`http://127.0.0.1:${monitorPort}/healthz`), logTail);
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
  let monitorPort = 0;
  try {
    // Another process may take a port between freePorts() and the bind: try other ports then.
    for (let attempt = 1; ; attempt++) {
      [port, monitorPort] = (await freePorts(2)) as [number, number];
      try {
        await launch(port, monitorPort);
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
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    storeDir,
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
    async restart(config?: string[]) {
      if (stopped) throw new Error('nats-server: restart() after stop()');
      await terminate('SIGTERM');
      if (config) extra = config;
      await launch(port, monitorPort);
    },
  };
}

/**
 * A detached shell that outlives us: once our pid is gone it SIGKILLs the pid in
 * `pidFile` (the current server; rewritten on every start) and removes `dir`.
 */
export function startReaper(dir: string, pidFile: string): { stop(): void } {
  const reaper = spawn(
    'bash',
    [
      '-c',
      'p=$1; d=$2; f=$3; while kill -0 "$p" 2>/dev/null && [ -d "$d" ]; do sleep 1; done; ' +
        '[ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; rm -rf "$d"',
      'kubetx-test-reaper',
      String(process.pid),
      dir,
      pidFile,
    ],
    { detached: true, stdio: 'ignore' },
  );
  reaper.unref();
  return {
    stop() {
      try {
        if (reaper.pid) process.kill(-reaper.pid, 'SIGTERM'); // its process group: the shell and its sleep
      } catch {
        // already gone
      }
    },
  };
}

/** Polls `probe` (50 ms doubling to 500 ms) until it is true; fails early if the process exits. */
export async function waitUntil(
  what: string,
  child: ChildProcess,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  logTail: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`waiting for ${what}: process exited (${child.exitCode ?? child.signalCode})\n${logTail()}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 500);
  }
  throw new Error(`waiting for ${what}: not ready after ${timeoutMs / 1000}s\n${logTail()}`);
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.ok;
}

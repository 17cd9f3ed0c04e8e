/**
 * A throwaway PostgreSQL server for tests: initdb into a temp dir, pg_ctl start
 * on a free localhost port (socket in the same dir, fsync off), one database,
 * trust authentication. `stop()` shuts it down (immediate) and removes the dir.
 *
 * Binaries: $PG_BIN, else the newest $PG_LIB_DIR/<v>/bin (default /usr/lib/postgresql,
 * Debian/Ubuntu), else initdb on PATH. Missing → an error saying to run hack/postgres.sh.
 * initdb refuses to run as root, so as root the server runs as the `postgres`
 * user (runuser) in a temp dir owned by it.
 *
 * No stray servers: besides `stop()`, the process's exit stops the server, and
 * a detached watchdog shell stops it and removes the directory within a second
 * or two of this process dying any other way (SIGKILL, a killed test worker).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PostgresServer {
  /** postgresql://kubetx@127.0.0.1:<port>/<database> */
  readonly url: string;
  readonly port: number;
  readonly database: string;
  readonly dir: string;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** @default "kubetx_test" */
  database?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
}

/** Where initdb/pg_ctl live, or an Error explaining how to get them. */
export function findPostgresBin(): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const root = process.env.PG_LIB_DIR || '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(root, v, 'bin'));
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(dir);
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'postgres'))) return dir;
  }
  throw new Error(
    `PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $PG_BIN, ${root}/*/bin or PATH. ` +
      'Install them with `bash hack/postgres.sh` (as root; Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN.',
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'running as root, and initdb refuses root: a `postgres` user is needed to run the test server ' +
        '(the Debian package creates it: `bash hack/postgres.sh`), or run the tests as a non-root user',
    );
  }
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const database = options.database ?? 'kubetx_test';
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;

  const dir = mkdtempSync(join(tmpdir(), 'kubetx-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  // As root, run the server binaries as `postgres`; the environment is passed on (LANG etc.).
  const pgExec = (tool: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { cwd: dir })
      : run(join(bin, tool), args, { cwd: dir });
  const logTail = () => {
    try {
      return readFileSync(log, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no server log)';
    }
  };

  let started = false;
  let stopped: Promise<void> | undefined;
  const pgCtl = asRoot ? ['runuser', '-u', 'postgres', '--', join(bin, 'pg_ctl')] : [join(bin, 'pg_ctl')];
  const watchdog = spawn(
    'sh',
    [
      '-c',
      'p=$1; d=$2; t=$3; shift 3; while kill -0 "$p" 2>/dev/null; do sleep 1; done; ' +
        '"$@" stop -D "$d" -m immediate -w -t 20 >/dev/null 2>&1; rm -rf "$t"',
      'kubetx-pg-watchdog',
      String(process.pid),
      data,
      dir,
      ...pgCtl,
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  const stopWatchdog = () => {
    try {
      if (watchdog.pid) process.kill(-watchdog.pid, 'SIGTERM'); // its process group: the shell and its sleep
    } catch {
      // already gone
    }
  };
  const stopSync = () => {
    stopWatchdog();
    if (started) {
      try {
        execFileSync(pgCtl[0]!, [...pgCtl.slice(1), 'stop', '-D', data, '-m', 'immediate', '-w', '-t', '20'], { stdio: 'ignore' });
      } catch {
        // already stopped
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopSync);

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      process.removeListener('exit', stopSync);
      stopWatchdog();
      if (started) {
        await pgExec('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20']).catch(() => undefined);
        started = false;
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await pgExec('initdb', ['-D', data, '-U', 'kubetx', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions']).catch(
      (err: { stderr?: string; message: string }) => {
        throw new Error(`initdb failed: ${err.stderr || err.message}`);
      },
    );
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 100,
      ...options.settings,
    };
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const opts = [`-p ${port}`, `-k ${dir}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
      try {
        await pgExec('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', opts]);
        started = true;
        break;
      } catch (err) {
        // Another process may have taken the port between freePort() and the bind: try another.
        if (attempt >= 3) throw new Error(`pg_ctl start failed: ${(err as Error).message}\n${logTail()}`);
      }
    }

    const admin = new pg.Client({ host: '127.0.0.1', port, user: 'kubetx', database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    return { url: `postgresql://kubetx@127.0.0.1:${port}/${database}`, port, database, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Test teardown: ends the pools (giving up after `graceMs` if a client is still
 * checked out, e.g. after a failed test) and always stops the server.
 */
export async function stopPostgres(server: PostgresServer | undefined, pools: Array<pg.Pool | undefined>, graceMs = 5_000): Promise<void> {
  try {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pools.map((p) => p?.end().catch(() => undefined))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  } finally {
    await server?.stop();
  }
}

/**
 * A child process of a bank test (a bank, the SDK's reference participant):
 * spawned with its stdout read as lines (JSON parsed where possible, else
 * `{ msg: text }`), its stderr kept, SIGKILLed if this process exits first,
 * and a `stop()` that is SIGTERM, then SIGKILL after a grace period.
 * KUBETX_TEST_PARTICIPANT_LOGS=1 echoes its output to this process's stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface LoggedProcess {
  child: ChildProcess;
  /** Every stdout line so far, JSON parsed where possible. */
  lines: Array<Record<string, unknown>>;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  exited(): boolean;
  /** SIGTERM, and SIGKILL after 15 s; resolves with the exit code (null when killed by a signal) once the process is gone. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Prefix of the echoed output. */
  tag: string;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function spawnLogged(command: string, args: string[], o: SpawnOptions): LoggedProcess {
  const child = spawn(command, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const echo = process.env.KUBETX_TEST_PARTICIPANT_LOGS ? (t: string) => process.stderr.write(t) : undefined;
  const lines: Array<Record<string, unknown>> = [];
  let stdout = '';
  let stderr = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      echo?.(`[${o.tag}] ${text}\n`);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    echo?.(`[${o.tag} stderr] ${d.toString()}`);
  });
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async () => {
    if (exited()) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exit;
    clearTimeout(timer);
    return code;
  };
  return { child, lines, stdout: () => stdout, stderr: () => stderr, exited, stop };
}

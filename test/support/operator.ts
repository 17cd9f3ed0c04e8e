/**
 * Runs the real operator as a separate process (src/main.ts through tsx), the
 * way it runs in a cluster, so tests can SIGKILL it and start it again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './testenv-paths.js';

export interface OperatorProcess {
  child: ChildProcess;
  /** Every log line so far (JSON parsed where possible). */
  lines: Array<Record<string, unknown>>;
  metricsPort: number;
  /** /healthz and /readyz. */
  healthPort: number;
  /** Everything the process wrote to stderr so far (Node warnings land here). */
  stderr(): string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Prometheus text from /metrics. */
  metrics(): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface OperatorOptions {
  kubeconfig: string;
  namespaces?: string[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Tests reach participants on loopback addresses. @default true */
  allowRawAddresses?: boolean;
  /** Options for node itself (e.g. a heap limit), before the script. */
  nodeArgs?: string[];
  /** Another checkout to run the operator from (the benchmark's A/B baseline). @default this repository */
  root?: string;
  /** Run the compiled dist/src/main.js, as the image does (build it first), instead of the sources through tsx. */
  built?: boolean;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export async function startOperator(opts: OperatorOptions): Promise<OperatorProcess> {
  const args = [
    ...(opts.nodeArgs ?? []),
    ...(opts.built ? [join(opts.root ?? repoRoot, 'dist/src/main.js')] : ['--import', 'tsx', join(opts.root ?? repoRoot, 'src/main.ts')]),
    '--kubeconfig', opts.kubeconfig,
    '--metrics-bind-address', '127.0.0.1:0',
    '--health-probe-bind-address', '127.0.0.1:0',
    // Participants listen on loopback here: open it (the operator's own ports stay refused).
    ...(opts.allowRawAddresses === false ? [] : ['--allow-raw-addresses', '--allow-address-cidr', '127.0.0.0/8']),
    ...(opts.namespaces?.length ? ['--namespaces', opts.namespaces.join(',')] : []),
    ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: opts.root ?? repoRoot, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  let stderr = '';
  const onLine = (text: string) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    if (process.env.KUBETX_TEST_OPERATOR_LOGS) process.stderr.write(`[operator ${child.pid}] ${text}\n`);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));

  const waitForLog = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 60_000) => {
    const found = lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`operator log line not seen in ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
      const exitHandler = () => reject(new Error(`operator exited (${child.exitCode ?? child.signalCode}); stderr: ${stderr.slice(-2000)}`));
      child.once('exit', exitHandler);
      waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          child.off('exit', exitHandler);
          resolve(l);
        },
      });
    });
  };

  const metricsLine = await waitForLog((l) => l.msg === 'serving /metrics');
  const healthLine = await waitForLog((l) => l.msg === 'serving /healthz and /readyz');
  await waitForLog((l) => l.msg === 'controller started' || l.msg === 'waiting for leadership');
  const metricsPort = metricsLine.port as number;
  return {
    child,
    lines,
    metricsPort,
    healthPort: healthLine.port as number,
    stderr: () => stderr,
    waitForLog,
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

/** Sum of a counter's samples in Prometheus text whose labels include all of `labels`. */
export function counterValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/**
 * The bank examples (examples/bank-<language>) as processes for integration
 * tests: one command line per language (the same flags everywhere: --bank,
 * --listen, --database-url, --conformance-hook, --fault-rate, ...), started
 * and waited for until it answers, plus the reads the tests check a bank's
 * ledger with, on its own database: accounts, pending credits, the `applied`
 * audit and how it agrees with the kubetx_barrier table.
 *
 * How each language is run (the builds are cached by a hash of the sources):
 *   ts      node --import tsx examples/bank-ts/server.ts
 *   go      the binary of examples/bank-go (go-build.ts: go build)
 *   java    java -jar <bank-java.jar> (java-build.ts: hack/test-java.sh --build-only, Maven)
 *   python  <venv>/bin/python -m bank_python, in examples/bank-python (python-env.ts: the SDK's venv)
 * All of them take --listen 127.0.0.1:0 and log the bound address as the JSON
 * line "bank listening" (field `address`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import type { KitReport } from '../../src/conformance/runner.js';
import { ConformanceHookClient } from '../../src/gen/kubetx/conformance/v1/hook.js';
import { freePorts } from './control-plane.js';
import { eventually } from './env.js';
import { goBuild } from './go-build.js';
import { bankJavaJar } from './java-build.js';
import type { PostgresServer } from './postgres.js';
import { pythonEnv } from './python-env.js';
import { repoRoot } from './testenv-paths.js';

export type Language = 'ts' | 'go' | 'java' | 'python';

/** How to run one language's bank: argv[0] and what comes before the bank's flags. */
export interface BankLauncher {
  language: Language;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Whether the bank takes --listen host:0 and logs the bound address as "bank listening". @default true */
  portZero?: boolean;
  /** How it was obtained (built, cached), for the test's log. */
  note: string;
}

/** A file each example must have, checked first for a clear message. */
const ENTRY_POINTS: Record<Language, string> = {
  ts: 'examples/bank-ts/server.ts',
  go: 'examples/bank-go/go.mod',
  java: 'examples/bank-java/pom.xml',
  python: 'examples/bank-python/bank_python/__main__.py',
};

/** Builds (or finds cached) and describes how to launch the bank of `language`. */
export async function bankLauncher(language: Language): Promise<BankLauncher> {
  const entry = ENTRY_POINTS[language];
  if (!existsSync(join(repoRoot, entry))) throw new Error(`${entry} is missing: the ${language} bank example (examples/bank-${language}) has to be written first`);
  switch (language) {
    case 'ts':
      return { language, command: process.execPath, args: ['--import', 'tsx', join(repoRoot, 'examples/bank-ts/server.ts')], cwd: repoRoot, note: 'tsx' };
    case 'go': {
      const started = Date.now();
      const built = await goBuild({ module: 'examples/bank-go', name: 'bank-go' });
      return { language, command: built.path, args: [], note: `${built.built ? 'built' : 'cached'} in ${Date.now() - started} ms` };
    }
    case 'java': {
      const started = Date.now();
      const jar = await bankJavaJar();
      return { language, command: 'java', args: ['-jar', jar.path], note: `${jar.built ? 'built' : 'cached'} in ${Date.now() - started} ms` };
    }
    case 'python': {
      const started = Date.now();
      const env = await pythonEnv();
      return {
        language,
        command: env.python,
        args: ['-m', 'bank_python'],
        cwd: join(repoRoot, 'examples/bank-python'),
        env: { PYTHONUNBUFFERED: '1' },
        note: `venv ${env.venv} in ${Date.now() - started} ms`,
      };
    }
  }
}

export interface BankProcess {
  name: string;
  language: Language;
  child: ChildProcess;
  address: string;
  /** Every stdout line so far, JSON parsed where possible. */
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  /** SIGTERM, and SIGKILL after 15 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

export interface StartBankOptions {
  name: string;
  databaseUrl: string;
  /** @default 0 */
  faultRate?: number;
  faultSeed?: number;
  /** @default true */
  conformanceHook?: boolean;
  /** @default "2s" */
  shutdownGrace?: string;
  /** @default 30_000 */
  startTimeoutMs?: number;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

function exitedOf(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function startBank(launcher: BankLauncher, o: StartBankOptions): Promise<BankProcess> {
  const portZero = launcher.portZero ?? true;
  const listen = portZero ? '127.0.0.1:0' : `127.0.0.1:${(await freePorts(1))[0]}`;
  const args = [
    ...launcher.args,
    '--bank', o.name,
    '--listen', listen,
    '--database-url', o.databaseUrl,
    ...(o.conformanceHook === false ? [] : ['--conformance-hook']),
    '--fault-rate', String(o.faultRate ?? 0),
    ...(o.faultSeed === undefined ? [] : ['--fault-seed', String(o.faultSeed)]),
    '--shutdown-grace', o.shutdownGrace ?? '2s',
  ];
  const child = spawn(launcher.command, args, { cwd: launcher.cwd, env: { ...process.env, ...launcher.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      running.delete(child);
      r();
    }),
  );
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buf = '';
  const tag = `${launcher.language}/${o.name}`;
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (process.env.KUBETX_TEST_PARTICIPANT_LOGS) process.stderr.write(`[${tag}] ${text}\n`);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (process.env.KUBETX_TEST_PARTICIPANT_LOGS) process.stderr.write(`[${tag} stderr] ${d.toString()}`);
  });
  const stop = async () => {
    if (exitedOf(child)) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const address = await eventually(
      `bank ${tag} listening`,
      async () => {
        if (exitedOf(child)) throw new Error(`bank ${tag} exited (${child.exitCode ?? child.signalCode}): ${stderr.slice(-2000)} ${JSON.stringify(lines.slice(-3))}`);
        const line = lines.find((l) => l.msg === 'bank listening' || l.message === 'bank listening');
        if (!line) return undefined;
        return portZero ? (line.address as string | undefined) : listen;
      },
      o.startTimeoutMs ?? 30_000,
    );
    // Answering: the hook when served, else any call (UNIMPLEMENTED counts as an answer).
    const hook = hookClient(address);
    try {
      await eventually(
        `bank ${tag} answering`,
        () =>
          hook.readAccount({ account: 'none' }).catch((err: grpc.ServiceError) => {
            if (o.conformanceHook === false && err.code === grpc.status.UNIMPLEMENTED) return {};
            throw err;
          }),
        10_000,
      );
    } finally {
      hook.close();
    }
    return { name: o.name, language: launcher.language, child, address, lines, stderr: () => stderr, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function hookClient(address: string) {
  const client = new ConformanceHookClient(address, grpc.credentials.createInsecure());
  const call =
    <Req, Res>(method: (req: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown) =>
    (req: Req) =>
      new Promise<Res>((resolve, reject) =>
        method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e, r) => (e ? reject(e) : resolve(r))),
      );
  return {
    openAccount: call(client.openAccount),
    readAccount: call(client.readAccount),
    close: () => client.close(),
  };
}

/** Opens (or resets) accounts through a bank's ConformanceHook. */
export async function openAccounts(address: string, accounts: Record<string, number>): Promise<void> {
  const hook = hookClient(address);
  try {
    for (const [account, balance] of Object.entries(accounts)) await hook.openAccount({ account, balance });
  } finally {
    hook.close();
  }
}

/** CREATE DATABASE for each name on the server (bank_<name>); returns their URLs. */
export async function createDatabases(server: PostgresServer, names: string[]): Promise<Record<string, string>> {
  const admin = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'kubetx', database: 'postgres' });
  await admin.connect();
  try {
    for (const n of names) await admin.query(`CREATE DATABASE bank_${n}`);
  } finally {
    await admin.end();
  }
  return Object.fromEntries(names.map((n) => [n, bankDatabaseUrl(server, n)]));
}

export function bankDatabaseUrl(server: PostgresServer, name: string): string {
  return `postgres://kubetx@127.0.0.1:${server.port}/bank_${name}?sslmode=disable`;
}

export function bankPool(server: PostgresServer, name: string): pg.Pool {
  return new pg.Pool({ host: '127.0.0.1', port: server.port, user: 'kubetx', database: `bank_${name}`, max: 2 });
}

export interface Account {
  id: string;
  balance: number;
  held: number;
}

export interface Ledger {
  accounts: Map<string, Account>;
  pendingCredits: number;
  /** (uid, branch, method) → how many `applied` rows. */
  applied: Map<string, number>;
  /** (uid, branch, method) → the barrier row's origin. */
  barrier: Map<string, 'call' | 'blocker'>;
}

/** A bank's ledger, read from its own database. */
export async function readLedger(pool: pg.Pool): Promise<Ledger> {
  const acc = await pool.query<{ id: string; balance: string; held: string }>('SELECT id, balance, held FROM accounts');
  const pending = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pending_credits');
  const applied = await pool.query<{ uid: string; branch: string; method: string; n: number }>(
    'SELECT uid, branch, method, count(*)::int AS n FROM applied GROUP BY uid, branch, method',
  );
  const barrier = await pool.query<{ uid: string; branch: string; method: string; origin: 'call' | 'blocker' }>('SELECT uid, branch, method, origin FROM kubetx_barrier');
  return {
    accounts: new Map(acc.rows.map((r) => [r.id, { id: r.id, balance: Number(r.balance), held: Number(r.held) }])),
    pendingCredits: pending.rows[0]!.n,
    applied: new Map(applied.rows.map((r) => [`${r.uid}/${r.branch}/${r.method}`, r.n])),
    barrier: new Map(barrier.rows.map((r) => [`${r.uid}/${r.branch}/${r.method}`, r.origin])),
  };
}

/**
 * What is wrong with a ledger's bookkeeping, as messages (none = sound):
 * money held or credits pending, an effect applied more than once, an effect
 * without its barrier row, a barrier row of a call without its effect (but for
 * null compensations: a Cancel/Compensate whose Try/Execute is a blocker).
 */
export function ledgerProblems(bank: string, l: Ledger): string[] {
  const out: string[] = [];
  for (const a of l.accounts.values()) if (a.held !== 0) out.push(`${bank}/${a.id} still holds ${a.held}`);
  if (l.pendingCredits !== 0) out.push(`${bank}: ${l.pendingCredits} pending credits left`);
  for (const [k, n] of l.applied) {
    if (n !== 1) out.push(`${bank}: ${k} applied ${n} times`);
    if (l.barrier.get(k) !== 'call') out.push(`${bank}: applied ${k} without a barrier row of origin call (${l.barrier.get(k)})`);
  }
  for (const [k, origin] of l.barrier) {
    if (origin !== 'call') continue;
    const [u, b, m] = k.split('/');
    const forward = m === 'Cancel' ? 'Try' : m === 'Compensate' ? 'Execute' : undefined;
    const nullCompensation = forward !== undefined && l.barrier.get(`${u}/${b}/${forward}`) === 'blocker';
    if (l.applied.has(k) === nullCompensation) out.push(`${bank}: barrier row ${k} ${nullCompensation ? 'is a null compensation but was applied' : 'has no applied effect'}`);
  }
  return out;
}

/** The methods applied per "<uid>/<branch>", sorted, from one ledger. */
export function effectsByBranch(l: Ledger): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of l.applied.keys()) {
    const [u, b, m] = k.split('/');
    const key = `${u}/${b}`;
    out.set(key, [...(out.get(key) ?? []), m!].sort());
  }
  return out;
}

/** Runs the conformance kit (tcc, saga) against a bank; its JSON report and exit code. */
export async function runConformanceKit(address: string): Promise<{ code: number; report: KitReport; out: string }> {
  const { main } = await import('../../src/conformance/cli.js');
  let out = '';
  let err = '';
  const code = await main(['--target', address, '--services', 'tcc,saga', '--json'], { out: (t) => (out += t), err: (t) => (err += t) });
  let report: KitReport;
  try {
    report = JSON.parse(out) as KitReport;
  } catch {
    throw new Error(`conformance kit (exit ${code}) printed no JSON report: ${out} ${err}`);
  }
  return { code, report, out: out + err };
}

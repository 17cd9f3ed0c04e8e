/**
 * The Python example participant (examples/bank-python, on the Python SDK in
 * sdk/python) through the real operator: two banks, "alpha" and "beta", each a
 * bank-python process with its own PostgreSQL database and injected transient
 * faults (UNAVAILABLE before or after committing), and a handful of TCC and
 * Saga transfers between them, some over the balance so they are refused and
 * roll back. Checked on the banks' own data: money is neither made nor lost,
 * nothing stays held or pending, each committed transfer moved exactly its
 * amount and each rolled-back one nothing, no effect was applied twice.
 *
 * Then the conformance kit's real bin (built into a scratch dir, as
 * test/unit/conformance-kit.test.ts does) against a third bank-python process
 * with --conformance-hook and no faults: every tcc and saga rule must pass;
 * and against the SDK's reference participant (`python -m
 * kubetx_participant.conformance`: all four services on the SDK's barrier and
 * outbox), on PostgreSQL and on SQLite: every rule of every service.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { ConformanceHookClient } from '../../src/gen/kubetx/conformance/v1/hook.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { terminal, transactions } from '../support/payment.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';
import { pythonEnv } from '../support/python-env.js';
import { repoRoot } from '../support/testenv-paths.js';

const run = promisify(execFile);
const FAULT_RATE = 0.3;
const OPENING = 1_000;
const OVER_BALANCE = 1_000_000;

type BankName = 'alpha' | 'beta' | 'kit';
const ACCOUNTS: Record<'alpha' | 'beta', string[]> = { alpha: ['alice', 'ann'], beta: ['bob', 'ben'] };

interface Transfer {
  name: string;
  mode: 'TCC' | 'Saga';
  from: { bank: 'alpha' | 'beta'; account: string };
  to: { bank: 'alpha' | 'beta'; account: string };
  amount: number;
}

const PLAN: Transfer[] = [
  { name: 'tcc-ok', mode: 'TCC', from: { bank: 'alpha', account: 'alice' }, to: { bank: 'beta', account: 'bob' }, amount: 100 },
  { name: 'saga-ok', mode: 'Saga', from: { bank: 'beta', account: 'ben' }, to: { bank: 'alpha', account: 'ann' }, amount: 50 },
  { name: 'tcc-refused', mode: 'TCC', from: { bank: 'alpha', account: 'ann' }, to: { bank: 'beta', account: 'ben' }, amount: OVER_BALANCE },
  { name: 'saga-refused', mode: 'Saga', from: { bank: 'beta', account: 'bob' }, to: { bank: 'alpha', account: 'alice' }, amount: OVER_BALANCE },
  { name: 'tcc-ok-2', mode: 'TCC', from: { bank: 'beta', account: 'ben' }, to: { bank: 'alpha', account: 'alice' }, amount: 30 },
  { name: 'saga-ok-2', mode: 'Saga', from: { bank: 'alpha', account: 'alice' }, to: { bank: 'beta', account: 'bob' }, amount: 20 },
];
/** The plan twice over (round a and b), all at once: twelve transfers, four of them refused. */
const TRANSFERS: Transfer[] = ['a', 'b'].flatMap((round) => PLAN.map((t) => ({ ...t, name: `${t.name}-${round}` })));

interface BankProcess {
  name: BankName;
  child: ChildProcess;
  address: string;
  lines: Array<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let python: string;
let kitBin: string;
let scratch: string;
let pgServer: PostgresServer | undefined;
let operator: OperatorProcess | undefined;
const pools: Partial<Record<'alpha' | 'beta', pg.Pool>> = {};
const banks: Partial<Record<BankName, BankProcess>> = {};
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});
const log = (m: string) => process.stderr.write(`[bank-python] ${m}\n`);

function hookClient(address: string) {
  const client = new ConformanceHookClient(address, grpc.credentials.createInsecure());
  const call = <Req, Res>(method: (req: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown) =>
    (req: Req) =>
      new Promise<Res>((resolve, reject) =>
        method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e, r) => (e ? reject(e) : resolve(r))),
      );
  return { openAccount: call(client.openAccount), readAccount: call(client.readAccount), close: () => client.close() };
}

async function startBank(name: BankName, databaseUrl: string, extra: string[]): Promise<BankProcess> {
  const child = spawn(python, ['-m', 'bank_python', '--bank', name, '--listen', '127.0.0.1:0', '--database-url', databaseUrl, '--conformance-hook', '--shutdown-grace', '2s', ...extra], {
    cwd: join(repoRoot, 'examples/bank-python'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      running.delete(child);
      r(code);
    }),
  );
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (process.env.KUBETX_TEST_PARTICIPANT_LOGS) process.stderr.write(`[${name}] ${text}\n`);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    return exited;
  };
  try {
    const address = await eventually(`bank ${name} listening`, async () => {
      if (child.exitCode !== null) throw new Error(`bank ${name} exited (${child.exitCode}): ${stderr}`);
      return lines.find((l) => l.msg === 'bank listening')?.address as string | undefined;
    }, 30_000);
    return { name, child, address, lines, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Builds the conformance kit alone into a scratch package and returns its real bin. */
async function buildKit(root: string): Promise<string> {
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(join(repoRoot, 'bin/kubetx-conformance'), join(root, 'bin/kubetx-conformance'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({
      extends: join(repoRoot, 'tsconfig.build.json'),
      compilerOptions: { outDir: join(root, 'dist'), rootDir: repoRoot, noEmit: false, declaration: false, sourceMap: false },
      include: [],
      files: [join(repoRoot, 'src/conformance/cli.ts')],
    }),
  );
  await run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { timeout: 120_000 });
  return join(root, 'bin/kubetx-conformance');
}

function transferTx(t: Transfer): DistributedTransaction {
  const branch = (name: 'out' | 'in', side: Transfer['from'], operation: string) => ({
    name,
    endpoint: { address: banks[side.bank]!.address },
    operation,
    payload: { account: side.account, amount: t.amount },
    callTimeout: '5s',
    // Saga: credit only once the debit is done.
    ...(t.mode === 'Saga' && name === 'in' ? { dependsOn: ['out'] } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: t.name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: t.mode,
      timeout: '60s',
      retry: { initialInterval: '100ms', maxInterval: '1s', multiplier: 2, maxAttempts: 0 },
      branches: [branch('out', t.from, 'TransOut'), branch('in', t.to, 'TransIn')],
    },
  };
}

beforeAll(async () => {
  const started = Date.now();
  scratch = mkdtempSync(join(tmpdir(), 'kubetx-bank-python-'));
  const [env, bin] = await Promise.all([pythonEnv(), buildKit(join(scratch, 'kit'))]);
  python = env.python;
  kitBin = bin;
  log(`venv ${env.venv} and kit ready in ${Date.now() - started} ms`);

  kc = kubeConfig();
  ns = await freshNamespace(kc, 'bank-python');
  txs = transactions(kc);
  pgServer = await startPostgres({ database: 'bank_alpha' });
  const admin = new pg.Client({ host: '127.0.0.1', port: pgServer.port, user: 'kubetx', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE bank_beta');
  await admin.query('CREATE DATABASE bank_kit');
  await admin.query('CREATE DATABASE reference');
  await admin.end();
  const url = (db: string) => `postgres://kubetx@127.0.0.1:${pgServer!.port}/bank_${db}?sslmode=disable`;
  const faults = ['--fault-rate', String(FAULT_RATE), '--fault-seed', '17'];
  const [alpha, beta, kit] = await Promise.all([startBank('alpha', url('alpha'), faults), startBank('beta', url('beta'), faults), startBank('kit', url('kit'), [])]);
  Object.assign(banks, { alpha, beta, kit });
  for (const b of ['alpha', 'beta'] as const) {
    pools[b] = new pg.Pool({ host: '127.0.0.1', port: pgServer.port, user: 'kubetx', database: `bank_${b}`, max: 2 });
    const hook = hookClient(banks[b]!.address);
    try {
      for (const a of ACCOUNTS[b]) await hook.openAccount({ account: a, balance: OPENING });
      expect(await hook.readAccount({ account: ACCOUNTS[b][0]! })).toMatchObject({ found: true, balance: OPENING, held: 0 });
    } finally {
      hook.close();
    }
  }
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
}, 600_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  const codes = await Promise.all((['alpha', 'beta', 'kit'] as const).map((b) => banks[b]?.stop()));
  await stopPostgres(pgServer, [pools.alpha, pools.beta]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  // SIGTERM is a graceful stop: exit 0.
  expect(codes.filter((c) => c !== undefined)).toEqual(codes.filter((c) => c !== undefined).map(() => 0));
});

interface KitReport {
  kind: string;
  ok: boolean;
  failed: number;
  rules: Array<{ id: string; pass: boolean; reason: string }>;
}

async function runKit(target: string, services: string): Promise<{ code: number; report: KitReport; stderr: string }> {
  const res = await run(process.execPath, [kitBin, '--target', target, '--services', services, '--json'], { timeout: 120_000 }).catch(
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  const { stdout, stderr } = res as { stdout: string; stderr: string };
  const code = 'code' in res && typeof res.code === 'number' ? res.code : 0;
  return { code, report: JSON.parse(stdout) as KitReport, stderr };
}

const failures = (r: KitReport) => r.rules.filter((v) => !v.pass).map((v) => `FAIL ${v.id} ${v.reason}`).join('\n');

/** The SDK's reference participant (python -m kubetx_participant.conformance); resolves with its address. */
async function startReference(args: string[]): Promise<{ address: string; stop: () => Promise<number | null> }> {
  const child = spawn(python, ['-m', 'kubetx_participant.conformance', '--listen', '127.0.0.1:0', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => (running.delete(child), r(c))));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    return exited;
  };
  try {
    const port = await eventually('the reference participant listening', async () => {
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}): ${err}`);
      return /listening on (\d+)/.exec(out)?.[1];
    }, 30_000);
    return { address: `127.0.0.1:${port}`, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

describe('bank-python: the Python example participant', () => {
  it('TCC and Saga transfers between two Python banks commit or roll back, with faults, and money is conserved', async () => {
    const started = Date.now();
    await Promise.all(TRANSFERS.map((t) => txs.create(transferTx(t))));
    const final = await Promise.all(TRANSFERS.map((t) => txs.untilPhase(ns, t.name, terminal, 90_000)));
    const phase = new Map(final.map((t) => [t.metadata.name!, t.status?.phase ?? '']));
    const uidToName = new Map(final.map((t) => [t.metadata.uid!, t.metadata.name!]));
    for (const t of TRANSFERS) {
      const refused = t.amount === OVER_BALANCE;
      const want = t.mode === 'TCC' ? (refused ? 'Aborted' : 'Committed') : refused ? 'Compensated' : 'Completed';
      expect(phase.get(t.name), `${t.name}: ${JSON.stringify(final.find((x) => x.metadata.name === t.name)?.status)}`).toBe(want);
      if (refused) {
        expect(final.find((x) => x.metadata.name === t.name)!.status?.message).toMatch(/branch out: (Try|Execute) refused: ABORTED: .*insufficient funds/);
      }
    }

    // Balances: the opening balance, minus what the committed transfers took out, plus what they put in.
    const expected = new Map<string, number>();
    for (const b of ['alpha', 'beta'] as const) for (const a of ACCOUNTS[b]) expected.set(`${b}/${a}`, OPENING);
    for (const t of TRANSFERS.filter((x) => x.amount !== OVER_BALANCE)) {
      expected.set(`${t.from.bank}/${t.from.account}`, expected.get(`${t.from.bank}/${t.from.account}`)! - t.amount);
      expected.set(`${t.to.bank}/${t.to.account}`, expected.get(`${t.to.bank}/${t.to.account}`)! + t.amount);
    }
    const actual = new Map<string, number>();
    const effects = new Map<string, string[]>();
    for (const b of ['alpha', 'beta'] as const) {
      const rows = await pools[b]!.query<{ id: string; balance: string; held: string }>('SELECT id, balance, held FROM accounts');
      for (const r of rows.rows) {
        actual.set(`${b}/${r.id}`, Number(r.balance));
        expect(Number(r.held), `${b}/${r.id} still holds money`).toBe(0);
      }
      expect((await pools[b]!.query('SELECT count(*)::int AS n FROM pending_credits')).rows[0].n, `${b}: pending credits left`).toBe(0);
      const applied = await pools[b]!.query<{ uid: string; branch: string; method: string; n: number }>(
        'SELECT uid, branch, method, count(*)::int AS n FROM applied GROUP BY uid, branch, method',
      );
      for (const r of applied.rows) {
        expect(r.n, `${b}: ${r.uid}/${r.branch}/${r.method} applied ${r.n} times`).toBe(1);
        const key = `${uidToName.get(r.uid)}/${r.branch}`;
        effects.set(key, [...(effects.get(key) ?? []), r.method].sort());
      }
    }
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    expect([...actual.values()].reduce((sum, v) => sum + v, 0)).toBe(4 * OPENING);
    for (const t of TRANSFERS) {
      const refused = t.amount === OVER_BALANCE;
      const out = effects.get(`${t.name}/out`) ?? [];
      const inn = effects.get(`${t.name}/in`) ?? [];
      if (t.mode === 'TCC' && !refused) expect([out, inn], t.name).toEqual([['Confirm', 'Try'], ['Confirm', 'Try']]);
      if (t.mode === 'Saga' && !refused) expect([out, inn], t.name).toEqual([['Execute'], ['Execute']]);
      if (refused) expect(out, `${t.name}: the refused debit changed nothing`).toEqual([]);
      if (refused) expect([[], ['Cancel', 'Try'], ['Compensate', 'Execute']], `${t.name}/in: ${inn}`).toContainEqual(inn);
    }
    const faults = (['alpha', 'beta'] as const).flatMap((b) => banks[b]!.lines.filter((l) => l.msg === 'fault injected'));
    const afterCommit = faults.filter((l) => l.when === 'after').length;
    log(`${TRANSFERS.length} transfers in ${Date.now() - started} ms; ${faults.length} faults injected (${afterCommit} after the commit)`);
    // A fault after the commit loses the answer: its repeat was answered from the barrier (applied once, above).
    expect(afterCommit).toBeGreaterThan(0);
    expect(faults.length - afterCommit).toBeGreaterThan(0);
  }, 120_000);

  it('passes the conformance kit (bin/kubetx-conformance --services tcc,saga)', async () => {
    const started = Date.now();
    const { code, report, stderr } = await runKit(banks.kit!.address, 'tcc,saga');
    expect(code, `${stderr}\n${failures(report)}`).toBe(0);
    expect(report.kind).toBe('kubetx-conformance-report');
    expect(report.ok).toBe(true);
    expect(report.failed).toBe(0);
    expect(report.rules.length).toBeGreaterThanOrEqual(19);
    expect(report.rules.every((r) => r.pass && (r.id.startsWith('tcc.') || r.id.startsWith('saga.')))).toBe(true);
    log(`conformance kit: ${report.rules.length} rules passed in ${Date.now() - started} ms`);
  }, 120_000);

  it.each(['postgres', 'sqlite'])('the SDK reference participant passes every rule of the kit on %s (tcc,saga,receiver,source)', async (db) => {
    const started = Date.now();
    const args = db === 'postgres' ? ['--database-url', `postgres://kubetx@127.0.0.1:${pgServer!.port}/reference?sslmode=disable`] : ['--sqlite', join(scratch, 'reference.db')];
    const ref = await startReference(args);
    try {
      const { code, report, stderr } = await runKit(ref.address, 'tcc,saga,receiver,source');
      expect(code, `${stderr}\n${failures(report)}`).toBe(0);
      expect(report.ok).toBe(true);
      for (const prefix of ['tcc.', 'saga.', 'receiver.', 'source.']) expect(report.rules.some((r) => r.id.startsWith(prefix)), prefix).toBe(true);
      log(`reference participant on ${db}: ${report.rules.length} rules passed in ${Date.now() - started} ms`);
    } finally {
      expect(await ref.stop()).toBe(0);
    }
  }, 120_000);
});

/**
 * The Java example participant (examples/bank-java) through the real operator:
 * two banks, "alpha" and "beta", each a bank-java process (the shaded jar of
 * test/support/java-build.ts) with its own PostgreSQL database and injected
 * transient faults (UNAVAILABLE before or after committing), and a handful of
 * TCC and Saga transfers between them, two of them over the balance so they
 * are refused and roll back. Then the conformance kit (bin/kubetx-conformance)
 * against a third bank-java process with --conformance-hook and no faults.
 *
 * Checked on the banks' own data: money is neither made nor lost, nothing stays
 * held or pending, each committed transfer moved exactly its amount and each
 * rolled-back one nothing, and no business effect was applied twice (the
 * handlers' `applied` audit rows, against each bank's kubetx_barrier table).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { ConformanceHookClient } from '../../src/gen/kubetx/conformance/v1/hook.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { bankJavaJar } from '../support/java-build.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions, terminal } from '../support/payment.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';
import { repoRoot } from '../support/testenv-paths.js';

const execFileP = promisify(execFile);
const FAULT_RATE = 0.2;
const OVER_BALANCE = 1_000_000;

type BankName = 'alpha' | 'beta' | 'kit';
const BANKS: Array<'alpha' | 'beta'> = ['alpha', 'beta'];
const OPENING = 1_000;
const ACCOUNTS: Record<'alpha' | 'beta', string[]> = { alpha: ['a1', 'a2'], beta: ['b1', 'b2'] };

interface Transfer {
  name: string;
  mode: 'TCC' | 'Saga';
  from: { bank: 'alpha' | 'beta'; account: string };
  to: { bank: 'alpha' | 'beta'; account: string };
  amount: number;
}

const TRANSFERS: Transfer[] = [
  { name: 'tcc-1', mode: 'TCC', from: { bank: 'alpha', account: 'a1' }, to: { bank: 'beta', account: 'b1' }, amount: 100 },
  { name: 'saga-1', mode: 'Saga', from: { bank: 'beta', account: 'b2' }, to: { bank: 'alpha', account: 'a2' }, amount: 50 },
  { name: 'tcc-2', mode: 'TCC', from: { bank: 'beta', account: 'b1' }, to: { bank: 'alpha', account: 'a1' }, amount: 70 },
  { name: 'saga-2', mode: 'Saga', from: { bank: 'alpha', account: 'a2' }, to: { bank: 'beta', account: 'b2' }, amount: 30 },
  { name: 'tcc-refused', mode: 'TCC', from: { bank: 'alpha', account: 'a1' }, to: { bank: 'beta', account: 'b2' }, amount: OVER_BALANCE },
  { name: 'saga-refused', mode: 'Saga', from: { bank: 'beta', account: 'b1' }, to: { bank: 'alpha', account: 'a2' }, amount: OVER_BALANCE },
];

interface BankProcess {
  child: ChildProcess;
  address: string;
  lines: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let jar: string;
let pgServer: PostgresServer | undefined;
const pools: Partial<Record<BankName, pg.Pool>> = {};
const banks: Partial<Record<BankName, BankProcess>> = {};
let operator: OperatorProcess | undefined;
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});
const log = (m: string) => process.stderr.write(`[bank-java] ${m}\n`);

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
  const child = spawn(
    'java',
    ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xss512k', '-jar', jar, '--bank', name, '--listen', '127.0.0.1:0', '--database-url', databaseUrl, '--conformance-hook', '--shutdown-grace', '2s', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
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
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  try {
    const address = await eventually(`bank ${name} listening`, async () => {
      if (child.exitCode !== null) throw new Error(`bank ${name} exited (${child.exitCode}): ${stderr} ${JSON.stringify(lines.slice(-3))}`);
      return lines.find((l) => l.msg === 'bank listening')?.address as string | undefined;
    }, 60_000);
    const hook = hookClient(address);
    try {
      await eventually(`bank ${name} answering`, () => hook.readAccount({ account: 'none' }), 10_000);
    } finally {
      hook.close();
    }
    return { child, address, lines, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function transferTx(t: Transfer): DistributedTransaction {
  const branch = (name: 'out' | 'in', side: Transfer['from'], operation: string) => ({
    name,
    endpoint: { address: banks[side.bank]!.address },
    operation,
    payload: { account: side.account, amount: t.amount },
    callTimeout: '5s',
    ...(t.mode === 'Saga' && name === 'in' ? { dependsOn: ['out'] } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: t.name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: t.mode,
      timeout: '60s',
      retry: { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 },
      branches: [branch('out', t.from, 'TransOut'), branch('in', t.to, 'TransIn')],
    },
  };
}

beforeAll(async () => {
  const started = Date.now();
  const built = await bankJavaJar();
  jar = built.path;
  log(`${built.built ? 'built' : 'cached'} ${jar} in ${Date.now() - started} ms`);

  kc = kubeConfig();
  ns = await freshNamespace(kc, 'bank-java');
  txs = transactions(kc);
  pgServer = await startPostgres({ database: 'bank_alpha' });
  const admin = new pg.Client({ host: '127.0.0.1', port: pgServer.port, user: 'kubetx', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE bank_beta');
  await admin.query('CREATE DATABASE bank_kit');
  await admin.end();
  // The JDBC URL form for alpha, the libpq form (as bank-go takes it) for the others.
  const url = (bank: BankName) =>
    bank === 'alpha' ? `jdbc:postgresql://127.0.0.1:${pgServer!.port}/bank_alpha?user=kubetx` : `postgres://kubetx@127.0.0.1:${pgServer!.port}/bank_${bank}?sslmode=disable`;
  const faults = ['--fault-rate', String(FAULT_RATE), '--fault-seed', '17'];
  const [alpha, beta, kit] = await Promise.all([startBank('alpha', url('alpha'), faults), startBank('beta', url('beta'), faults), startBank('kit', url('kit'), [])]);
  banks.alpha = alpha;
  banks.beta = beta;
  banks.kit = kit;
  for (const b of [...BANKS, 'kit'] as BankName[]) pools[b] = new pg.Pool({ host: '127.0.0.1', port: pgServer.port, user: 'kubetx', database: `bank_${b}`, max: 2 });
  for (const bank of BANKS) {
    const hook = hookClient(banks[bank]!.address);
    try {
      for (const a of ACCOUNTS[bank]) await hook.openAccount({ account: a, balance: OPENING });
      expect(await hook.readAccount({ account: ACCOUNTS[bank][0]! })).toMatchObject({ found: true, balance: OPENING, held: 0 });
    } finally {
      hook.close();
    }
  }
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
  log(`set up in ${Date.now() - started} ms`);
}, 600_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await Promise.all((['alpha', 'beta', 'kit'] as BankName[]).map((b) => banks[b]?.stop()));
  await stopPostgres(pgServer, Object.values(pools));
});

describe('bank-java: the Java example participant', () => {
  it('TCC and Saga transfers between two Java banks commit or roll back, each effect applied once', async () => {
    const started = Date.now();
    await Promise.all(TRANSFERS.map((t) => txs.create(transferTx(t))));
    const final = await eventually(
      'every transfer terminal',
      async () => {
        const list = await txs.list(ns);
        return list.length === TRANSFERS.length && list.every((t) => terminal.has(t.status?.phase ?? '')) ? list : undefined;
      },
      90_000,
    );
    const phase = new Map(final.map((t) => [t.metadata.name!, t.status?.phase ?? '']));
    const message = new Map(final.map((t) => [t.metadata.name!, t.status?.message ?? '']));
    const uidToName = new Map(final.map((t) => [t.metadata.uid!, t.metadata.name!]));
    for (const t of TRANSFERS) {
      const refused = t.amount === OVER_BALANCE;
      const want = t.mode === 'TCC' ? (refused ? 'Aborted' : 'Committed') : refused ? 'Compensated' : 'Completed';
      expect(phase.get(t.name), `${t.name}: ${message.get(t.name)}`).toBe(want);
      if (refused) expect(message.get(t.name)).toMatch(/branch out: (Try|Execute) refused: ABORTED: .*insufficient funds/);
    }

    // Balances: opening, minus what committed transfers took out, plus what they put in; nothing held or pending.
    const expected = new Map<string, number>();
    for (const b of BANKS) for (const a of ACCOUNTS[b]) expected.set(`${b}/${a}`, OPENING);
    for (const t of TRANSFERS.filter((x) => x.amount !== OVER_BALANCE)) {
      expected.set(`${t.from.bank}/${t.from.account}`, expected.get(`${t.from.bank}/${t.from.account}`)! - t.amount);
      expected.set(`${t.to.bank}/${t.to.account}`, expected.get(`${t.to.bank}/${t.to.account}`)! + t.amount);
    }
    const actual = new Map<string, number>();
    for (const b of BANKS) {
      const rows = await pools[b]!.query<{ id: string; balance: string; held: string }>('SELECT id, balance, held FROM accounts');
      for (const r of rows.rows) {
        actual.set(`${b}/${r.id}`, Number(r.balance));
        expect(Number(r.held), `${b}/${r.id} still holds money`).toBe(0);
      }
      const pending = await pools[b]!.query('SELECT count(*)::int AS n FROM pending_credits');
      expect(pending.rows[0].n, `${b}: pending credits left`).toBe(0);
    }
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    expect([...actual.values()].reduce((s, v) => s + v, 0)).toBe(BANKS.length * 2 * OPENING);

    // Effects applied once and as the outcome says; the barrier agrees.
    const effects = new Map<string, string[]>();
    for (const b of BANKS) {
      const applied = await pools[b]!.query<{ uid: string; branch: string; method: string; n: number }>(
        'SELECT uid, branch, method, count(*)::int AS n FROM applied GROUP BY uid, branch, method',
      );
      const barrier = await pools[b]!.query<{ uid: string; branch: string; method: string; origin: string }>('SELECT uid, branch, method, origin FROM kubetx_barrier');
      const rows = new Map(barrier.rows.map((r) => [`${r.uid}/${r.branch}/${r.method}`, r.origin]));
      for (const r of applied.rows) {
        expect(r.n, `${b}: ${r.uid}/${r.branch}/${r.method} applied ${r.n} times`).toBe(1);
        expect(rows.get(`${r.uid}/${r.branch}/${r.method}`), `${b}: applied without a barrier row`).toBe('call');
        const key = `${uidToName.get(r.uid)}/${r.branch}`;
        effects.set(key, [...(effects.get(key) ?? []), r.method].sort());
      }
    }
    for (const t of TRANSFERS) {
      for (const branch of ['out', 'in']) {
        const got = effects.get(`${t.name}/${branch}`) ?? [];
        const ok = phase.get(t.name);
        if (ok === 'Committed') expect(got, `${t.name}/${branch}`).toEqual(['Confirm', 'Try']);
        else if (ok === 'Completed') expect(got, `${t.name}/${branch}`).toEqual(['Execute']);
        else if (t.mode === 'TCC') expect([[], ['Cancel', 'Try']], `${t.name}/${branch}: ${got}`).toContainEqual(got);
        else expect([[], ['Compensate', 'Execute']], `${t.name}/${branch}: ${got}`).toContainEqual(got);
      }
    }
    const faults = BANKS.flatMap((b) => banks[b]!.lines.filter((l) => l.msg === 'fault injected')).length;
    log(`${TRANSFERS.length} transfers terminal and checked in ${Date.now() - started} ms (${faults} faults injected)`);
  }, 120_000);

  it('passes the conformance kit (tcc, saga) with --conformance-hook', async () => {
    const started = Date.now();
    const kit = join(repoRoot, 'bin/kubetx-conformance');
    let stdout = '';
    let code = 0;
    try {
      ({ stdout } = await execFileP(process.execPath, [kit, '--target', banks.kit!.address, '--services', 'tcc,saga'], { cwd: repoRoot, timeout: 90_000 }));
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      code = e.code ?? 1;
      stdout = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    log(`conformance kit: exit ${code} in ${Date.now() - started} ms; ${stdout.trim().split('\n').pop()}`);
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/all \d+ rules passed/);
  }, 120_000);
});

/**
 * The Go example participant (examples/bank-go) through the real operator:
 * two banks, "alpha" and "beta", each a bank-go process with its own
 * PostgreSQL database and injected transient faults (UNAVAILABLE before or
 * after committing), and 40 concurrent transfers between them, half TCC and
 * half Saga, some over the balance so they are refused and roll back. The
 * operator is SIGKILLed and restarted three times while they run.
 *
 * Checked on the banks' own data, not on the transactions' word: money is
 * neither made nor lost, nothing stays held or pending, each committed
 * transfer moved exactly its amount and each rolled-back one nothing, no
 * business effect was applied twice (the handlers' `applied` audit rows), and
 * the audit agrees with each bank's kubetx_barrier table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { ConformanceHookClient } from '../../src/gen/kubetx/conformance/v1/hook.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath, whileProgressing } from '../support/env.js';
import { goBuild } from '../support/go-build.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions, terminal } from '../support/payment.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../support/postgres.js';
import { TransactionWatch } from '../support/tx-watch.js';

const TRANSFERS = 40;
const WAVES = 4; // transfers are created in waves; the operator is killed during each but the last
const KILLS = WAVES - 1;
const FAULT_RATE = 0.2; // of calls answered UNAVAILABLE, half before and half after committing
const REFUSED_EVERY = 5; // every 5th transfer asks for more than any account holds
const OVER_BALANCE = 1_000_000;

type BankName = 'alpha' | 'beta';
const BANKS: BankName[] = ['alpha', 'beta'];

/**
 * Accounts. Senders only send and receivers only receive, so a Saga TransIn
 * that is compensated always finds its credit unspent (the bank's one
 * retry-until-funded case, README.md, does not arise here).
 */
const ACCOUNTS: Record<BankName, { senders: string[]; receivers: string[] }> = {
  alpha: { senders: ['a1', 'a2', 'a3', 'a4'], receivers: ['ar1', 'ar2'] },
  beta: { senders: ['b1', 'b2', 'b3', 'b4'], receivers: ['br1', 'br2'] },
};
const OPENING = { sender: 1_000, receiver: 500 };

interface Transfer {
  name: string;
  mode: 'TCC' | 'Saga';
  from: { bank: BankName; account: string };
  to: { bank: BankName; account: string };
  amount: number;
}

interface BankProcess {
  name: string;
  child: ChildProcess;
  address: string;
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  stop(): Promise<void>;
}

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let binary: string;
let pgServer: PostgresServer | undefined;
const pools: Partial<Record<BankName, pg.Pool>> = {};
const banks: Partial<Record<BankName, BankProcess>> = {};
let operator: OperatorProcess | undefined;
let url: (bank: string) => string;
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});
const log = (m: string) => process.stderr.write(`[bank-go] ${m}\n`);

function hookClient(address: string) {
  const client = new ConformanceHookClient(address, grpc.credentials.createInsecure());
  const call = <Req, Res>(method: (req: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown) =>
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

async function startBank(name: string, databaseUrl: string, faultRate = FAULT_RATE): Promise<BankProcess> {
  const child = spawn(
    binary,
    ['--bank', name, '--listen', '127.0.0.1:0', '--database-url', databaseUrl, '--conformance-hook', '--fault-rate', String(faultRate), '--shutdown-grace', '2s'],
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
    // It logs its address once it listens (after creating its schema and the barrier's table).
    const address = await eventually(`bank ${name} listening`, async () => {
      if (child.exitCode !== null) throw new Error(`bank ${name} exited (${child.exitCode}): ${stderr} ${JSON.stringify(lines.slice(-3))}`);
      return lines.find((l) => l.msg === 'bank listening')?.address as string | undefined;
    }, 30_000);
    const hook = hookClient(address);
    try {
      await eventually(`bank ${name} answering`, () => hook.readAccount({ account: 'none' }), 10_000);
    } finally {
      hook.close();
    }
    return { name, child, address, lines, stderr: () => stderr, stop };
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
    // Saga: credit only once the debit is done, so TransIn is undone only when the forward phase times out.
    ...(t.mode === 'Saga' && name === 'in' ? { dependsOn: ['out'] } : {}),
  });
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: t.name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: t.mode,
      timeout: '90s',
      retry: { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 },
      branches: [branch('out', t.from, 'TransOut'), branch('in', t.to, 'TransIn')],
    },
  };
}

/** Deterministic pseudo-random amounts, so a failure can be replayed. */
function plan(): Transfer[] {
  let seed = 0x5eed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const out: Transfer[] = [];
  for (let i = 0; i < TRANSFERS; i++) {
    const fromBank: BankName = i % 4 < 2 ? 'alpha' : 'beta';
    const toBank: BankName = fromBank === 'alpha' ? 'beta' : 'alpha';
    const senders = ACCOUNTS[fromBank].senders;
    const receivers = ACCOUNTS[toBank].receivers;
    out.push({
      name: `transfer-${String(i).padStart(2, '0')}`,
      mode: i % 2 === 0 ? 'TCC' : 'Saga',
      from: { bank: fromBank, account: senders[Math.floor(i / 4) % senders.length]! },
      to: { bank: toBank, account: receivers[i % receivers.length]! },
      amount: i % REFUSED_EVERY === REFUSED_EVERY - 1 ? OVER_BALANCE : 50 + rand(250),
    });
  }
  return out;
}

beforeAll(async () => {
  const started = Date.now();
  const built = await goBuild({ module: 'examples/bank-go', name: 'bank-go' });
  binary = built.path;
  log(`${built.built ? 'built' : 'cached'} ${binary} in ${Date.now() - started} ms`);

  kc = kubeConfig();
  ns = await freshNamespace(kc, 'bank-go');
  txs = transactions(kc);
  pgServer = await startPostgres({ database: 'bank_alpha' });
  const admin = new pg.Client({ host: '127.0.0.1', port: pgServer.port, user: 'kubetx', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE bank_beta');
  await admin.end();
  url = (bank: string) => `postgres://kubetx@127.0.0.1:${pgServer!.port}/bank_${bank}?sslmode=disable`;
  // Both banks at once, and a second alpha process beside the first: two processes of one bank
  // creating the schema at the same moment must not trip over each other.
  const [alpha, beta, twin] = await Promise.all([startBank('alpha', url('alpha')), startBank('beta', url('beta')), startBank('alpha', url('alpha'))]);
  // SIGTERM: a graceful stop, exit code 0.
  await twin!.stop();
  expect(twin!.child.exitCode).toBe(0);
  expect(twin!.lines.some((l) => l.msg === 'bank stopped')).toBe(true);
  banks.alpha = alpha;
  banks.beta = beta;
  for (const b of BANKS) pools[b] = new pg.Pool({ host: '127.0.0.1', port: pgServer.port, user: 'kubetx', database: `bank_${b}`, max: 2 });

  for (const bank of BANKS) {
    const hook = hookClient(banks[bank]!.address);
    try {
      for (const a of ACCOUNTS[bank].senders) await hook.openAccount({ account: a, balance: OPENING.sender });
      for (const a of ACCOUNTS[bank].receivers) await hook.openAccount({ account: a, balance: OPENING.receiver });
      expect(await hook.readAccount({ account: ACCOUNTS[bank].senders[0]! })).toMatchObject({ found: true, balance: OPENING.sender, held: 0 });
    } finally {
      hook.close();
    }
  }
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
}, 600_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await Promise.all(BANKS.map((b) => banks[b]?.stop()));
  await stopPostgres(pgServer, BANKS.map((b) => pools[b]));
});

interface Account {
  id: string;
  balance: number;
  held: number;
}

async function accounts(bank: BankName): Promise<Map<string, Account>> {
  const res = await pools[bank]!.query<{ id: string; balance: string; held: string }>('SELECT id, balance, held FROM accounts');
  return new Map(res.rows.map((r) => [r.id, { id: r.id, balance: Number(r.balance), held: Number(r.held) }]));
}

describe('bank-go: the Go example participant', () => {
  it(`${TRANSFERS} TCC and Saga transfers between two banks survive participant faults and ${KILLS} operator SIGKILLs`, async () => {
    const started = Date.now();
    const transfers = plan();

    // Our own watch of every transaction: the phase seen last, and when anything last moved.
    const phases = new Map<string, string>();
    let lastProgress = Date.now();
    const watch = new TransactionWatch(kc, ns, (obj) => {
      const phase = obj.status?.phase ?? '';
      if (phases.get(obj.metadata.name!) !== phase) lastProgress = Date.now();
      phases.set(obj.metadata.name!, phase);
    });
    await watch.start();
    const terminalCount = () => [...phases.values()].filter((p) => terminal.has(p)).length;

    let kills = 0;
    const perWave = TRANSFERS / WAVES;
    try {
      for (let w = 0; w < WAVES; w++) {
        const wave = transfers.slice(w * perWave, (w + 1) * perWave);
        await Promise.all(wave.map((t) => txs.create(transferTx(t))));
        lastProgress = Date.now();
        if (w === WAVES - 1) break;
        // Kill while this wave runs, once the restarted operator has made progress: a transaction of
        // this wave has moved past Pending, and (after the first kill) more are terminal than at the restart.
        const terminalAtRestart = terminalCount();
        await whileProgressing(
          `progress before kill ${kills + 1}`,
          async () => {
            const moved = wave.some((t) => (phases.get(t.name) ?? '') !== '');
            return moved && (kills === 0 || terminalCount() > terminalAtRestart || terminalCount() === phases.size) ? true : undefined;
          },
          () => lastProgress,
          60_000,
        );
        await operator!.kill('SIGKILL');
        kills++;
        log(`kill ${kills} at ${terminalCount()}/${phases.size} terminal`);
        operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
        lastProgress = Date.now();
      }

      await whileProgressing(
        `all ${TRANSFERS} transfers terminal`,
        async () => (terminalCount() === TRANSFERS ? true : undefined),
        () => lastProgress,
        60_000,
        async () => {
          const open = (await txs.list(ns)).filter((t) => !terminal.has(t.status?.phase ?? ''));
          return open.map((t) => `${t.metadata.name}: ${t.status?.phase} ${t.status?.message ?? ''} ${JSON.stringify(t.status?.branches?.map((b) => [b.name, b.state, b.lastError]))}`).join('\n');
        },
      );
    } finally {
      watch.stop();
    }

    // The outcome of every transfer, read afresh.
    const final = await txs.list(ns);
    const uid = new Map(final.map((t) => [t.metadata.name!, t.metadata.uid!]));
    const outcome = new Map(final.map((t) => [t.metadata.name!, t.status?.phase ?? '']));
    expect(final.length).toBe(TRANSFERS);
    const committed = transfers.filter((t) => outcome.get(t.name) === (t.mode === 'TCC' ? 'Committed' : 'Completed'));
    const rolledBack = transfers.filter((t) => outcome.get(t.name) === (t.mode === 'TCC' ? 'Aborted' : 'Compensated'));
    expect(committed.length + rolledBack.length, `unexpected phases: ${JSON.stringify([...outcome])}`).toBe(TRANSFERS);
    // Every over-balance transfer rolled back, refused by the sending bank for want of funds (not by a
    // timeout); the others may have run out of funds, but not all of them did.
    const message = new Map(final.map((t) => [t.metadata.name!, t.status?.message ?? '']));
    for (const t of transfers.filter((x) => x.amount === OVER_BALANCE)) {
      expect(outcome.get(t.name), t.name).toBe(t.mode === 'TCC' ? 'Aborted' : 'Compensated');
      expect(message.get(t.name), t.name).toMatch(/branch out: (Try|Execute) refused: ABORTED: .*insufficient funds/);
    }
    expect(committed.filter((t) => t.mode === 'TCC').length).toBeGreaterThan(0);
    expect(committed.filter((t) => t.mode === 'Saga').length).toBeGreaterThan(0);

    // Balances: opening balance, minus what committed transfers took out, plus what they put in.
    const expected = new Map<string, number>();
    for (const bank of BANKS) {
      for (const a of ACCOUNTS[bank].senders) expected.set(`${bank}/${a}`, OPENING.sender);
      for (const a of ACCOUNTS[bank].receivers) expected.set(`${bank}/${a}`, OPENING.receiver);
    }
    for (const t of committed) {
      expected.set(`${t.from.bank}/${t.from.account}`, expected.get(`${t.from.bank}/${t.from.account}`)! - t.amount);
      expected.set(`${t.to.bank}/${t.to.account}`, expected.get(`${t.to.bank}/${t.to.account}`)! + t.amount);
    }
    const actual = new Map<string, number>();
    let total = 0;
    for (const bank of BANKS) {
      for (const a of (await accounts(bank)).values()) {
        actual.set(`${bank}/${a.id}`, a.balance);
        total += a.balance;
        expect(a.held, `${bank}/${a.id} still holds money`).toBe(0);
      }
      const pending = await pools[bank]!.query('SELECT count(*)::int AS n FROM pending_credits');
      expect(pending.rows[0].n, `${bank}: pending credits left`).toBe(0);
    }
    expect(total).toBe(BANKS.reduce((s, b) => s + ACCOUNTS[b].senders.length * OPENING.sender + ACCOUNTS[b].receivers.length * OPENING.receiver, 0));
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));

    // Effects applied once, and as the outcome says, per transfer and branch.
    const uidToName = new Map([...uid].map(([n, u]) => [u, n]));
    const effects = new Map<string, string[]>(); // "<name>/<branch>" → methods applied
    for (const bank of BANKS) {
      const applied = await pools[bank]!.query<{ uid: string; branch: string; method: string; n: number }>(
        'SELECT uid, branch, method, count(*)::int AS n FROM applied GROUP BY uid, branch, method',
      );
      for (const r of applied.rows) {
        expect(r.n, `${bank}: ${r.uid}/${r.branch}/${r.method} applied ${r.n} times`).toBe(1);
        const name = uidToName.get(r.uid)!;
        const key = `${name}/${r.branch}`;
        effects.set(key, [...(effects.get(key) ?? []), r.method].sort());
      }

      // The barrier agrees: every applied effect has its barrier row, and every barrier row of a
      // call has its effect, except null compensations (a Cancel/Compensate whose Try/Execute was blocked).
      const barrier = await pools[bank]!.query<{ uid: string; branch: string; method: string; origin: string }>('SELECT uid, branch, method, origin FROM kubetx_barrier');
      const rows = new Map(barrier.rows.map((r) => [`${r.uid}/${r.branch}/${r.method}`, r.origin]));
      const appliedKeys = new Set(applied.rows.map((r) => `${r.uid}/${r.branch}/${r.method}`));
      for (const k of appliedKeys) expect(rows.get(k), `${bank}: applied ${k} without a barrier row`).toBe('call');
      for (const [k, origin] of rows) {
        if (origin !== 'call') continue;
        const [u, b, m] = k.split('/');
        const forward = m === 'Cancel' ? 'Try' : m === 'Compensate' ? 'Execute' : undefined;
        const nullCompensation = forward !== undefined && rows.get(`${u}/${b}/${forward}`) === 'blocker';
        expect(appliedKeys.has(k), `${bank}: barrier row ${k} (null compensation: ${nullCompensation})`).toBe(!nullCompensation);
      }
    }
    for (const t of transfers) {
      for (const branch of ['out', 'in']) {
        const got = effects.get(`${t.name}/${branch}`) ?? [];
        const ok = outcome.get(t.name);
        if (t.mode === 'TCC') {
          if (ok === 'Committed') expect(got, `${t.name}/${branch}`).toEqual(['Confirm', 'Try']);
          else expect([[], ['Cancel', 'Try']], `${t.name}/${branch}: ${got}`).toContainEqual(got);
        } else if (ok === 'Completed') expect(got, `${t.name}/${branch}`).toEqual(['Execute']);
        else expect([[], ['Compensate', 'Execute']], `${t.name}/${branch}: ${got}`).toContainEqual(got);
      }
    }

    const faultLines = BANKS.flatMap((b) => banks[b]!.lines.filter((l) => l.msg === 'fault injected'));
    const faults = faultLines.length;
    // A fault after the commit loses the answer: the repeat must be answered from the barrier, not applied again.
    const afterCommit = faultLines.filter((l) => l.when === 'after').length;
    const refused = rolledBack.length;
    log(
      `${TRANSFERS} transfers (${transfers.filter((t) => t.mode === 'TCC').length} TCC, ${transfers.filter((t) => t.mode === 'Saga').length} Saga): ` +
        `${committed.length} committed, ${refused} rolled back (${transfers.filter((t) => t.amount === OVER_BALANCE).length} over the balance); ` +
        `${kills} operator SIGKILLs, ${faults} faults injected (${afterCommit} after the commit); ${Date.now() - started} ms`,
    );
    expect(kills).toBe(KILLS);
    expect(afterCommit).toBeGreaterThan(0);
    expect(faults - afterCommit).toBeGreaterThan(0);
  }, 240_000);

  it('passes the conformance kit (tcc, saga) on a bank of its own', async () => {
    const admin = new pg.Client({ host: '127.0.0.1', port: pgServer!.port, user: 'kubetx', database: 'postgres' });
    await admin.connect();
    await admin.query('CREATE DATABASE bank_kit');
    await admin.end();
    // No injected faults here: the kit judges every answer.
    const bank = await startBank('kit', url('kit'), 0);
    try {
      const { main } = await import('../../src/conformance/cli.js');
      let out = '';
      const code = await main(['--target', bank.address, '--services', 'tcc,saga'], { out: (t) => (out += t), err: (t) => (out += t) });
      log(out.trim().split('\n').pop() ?? '');
      expect(code, out).toBe(0);
    } finally {
      await bank.stop();
    }
  }, 120_000);
});

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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BankTestbed,
  REFUSED_FOR_FUNDS,
  bankLauncher,
  buildKitBin,
  committedPhase,
  effectProblems,
  expectedBalances,
  faultLines,
  openAccounts,
  openingTotal,
  outcomes,
  readAccount,
  readBanks,
  rolledBackPhase,
  runKitBin,
  spawnLogged,
  transferTx,
  withBalance,
  type BankLauncher,
  type BankProcess,
  type KitJsonReport,
  type Transfer,
} from '../support/banks.js';
import { eventually } from '../support/env.js';
import { terminal } from '../support/payment.js';
import { repoRoot } from '../support/testenv-paths.js';

const FAULT_RATE = 0.3;
const OPENING = 1_000;
const OVER_BALANCE = 1_000_000;

type BankName = 'alpha' | 'beta' | 'kit';
const BANKS = ['alpha', 'beta'] as const;
const ACCOUNTS: Record<'alpha' | 'beta', string[]> = { alpha: ['alice', 'ann'], beta: ['bob', 'ben'] };
const OPENING_BALANCES = { alpha: withBalance(ACCOUNTS.alpha, OPENING), beta: withBalance(ACCOUNTS.beta, OPENING) };

const PLAN: Array<Transfer<'alpha' | 'beta'>> = [
  { name: 'tcc-ok', mode: 'TCC', from: { bank: 'alpha', account: 'alice' }, to: { bank: 'beta', account: 'bob' }, amount: 100 },
  { name: 'saga-ok', mode: 'Saga', from: { bank: 'beta', account: 'ben' }, to: { bank: 'alpha', account: 'ann' }, amount: 50 },
  { name: 'tcc-refused', mode: 'TCC', from: { bank: 'alpha', account: 'ann' }, to: { bank: 'beta', account: 'ben' }, amount: OVER_BALANCE },
  { name: 'saga-refused', mode: 'Saga', from: { bank: 'beta', account: 'bob' }, to: { bank: 'alpha', account: 'alice' }, amount: OVER_BALANCE },
  { name: 'tcc-ok-2', mode: 'TCC', from: { bank: 'beta', account: 'ben' }, to: { bank: 'alpha', account: 'alice' }, amount: 30 },
  { name: 'saga-ok-2', mode: 'Saga', from: { bank: 'alpha', account: 'alice' }, to: { bank: 'beta', account: 'bob' }, amount: 20 },
];
/** The plan twice over (round a and b), all at once: twelve transfers, four of them refused. */
const TRANSFERS = ['a', 'b'].flatMap((round) => PLAN.map((t) => ({ ...t, name: `${t.name}-${round}` })));

let bed: BankTestbed;
let launcher: BankLauncher;
let kitBin: string;
let scratch: string;
const banks: Partial<Record<BankName, BankProcess>> = {};
const log = (m: string) => process.stderr.write(`[bank-python] ${m}\n`);

beforeAll(async () => {
  const started = Date.now();
  scratch = mkdtempSync(join(tmpdir(), 'kubetx-bank-python-'));
  [launcher, kitBin] = await Promise.all([bankLauncher('python'), buildKitBin(join(scratch, 'kit'))]);
  log(`${launcher.note}; kit ready in ${Date.now() - started} ms`);

  bed = await BankTestbed.start('bank-python', ['alpha', 'beta', 'kit', 'reference']);
  const faults = { faultRate: FAULT_RATE, faultSeed: 17 };
  const [alpha, beta, kit] = await Promise.all([
    bed.startBank(launcher, { name: 'alpha', databaseUrl: bed.url('alpha'), ...faults }),
    bed.startBank(launcher, { name: 'beta', databaseUrl: bed.url('beta'), ...faults }),
    bed.startBank(launcher, { name: 'kit', databaseUrl: bed.url('kit') }),
  ]);
  Object.assign(banks, { alpha, beta, kit });
  for (const b of BANKS) {
    await openAccounts(banks[b]!.address, OPENING_BALANCES[b]);
    expect(await readAccount(banks[b]!.address, ACCOUNTS[b][0]!)).toMatchObject({ found: true, balance: OPENING, held: 0 });
  }
  await bed.startOperator();
}, 600_000);

afterAll(async () => {
  const codes = (await bed?.close()) ?? [];
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  // SIGTERM is a graceful stop: exit 0.
  expect(codes).toEqual(codes.map(() => 0));
});

/** The kit's real bin, --json. */
async function runKit(target: string, services: string): Promise<{ code: number; report: KitJsonReport; stderr: string }> {
  const { code, stdout, stderr } = await runKitBin(kitBin, ['--target', target, '--services', services, '--json'], 120_000);
  try {
    return { code, report: JSON.parse(stdout) as KitJsonReport, stderr };
  } catch {
    throw new Error(`the kit (exit ${code}) printed no JSON report: ${stdout} ${stderr}`);
  }
}

const failures = (r: KitJsonReport) => r.rules.filter((v) => !v.pass).map((v) => `FAIL ${v.id} ${v.reason}`).join('\n');

/** The SDK's reference participant (python -m kubetx_participant.conformance); resolves with its address. */
async function startReference(args: string[]): Promise<{ address: string; stop: () => Promise<number | null> }> {
  const ref = spawnLogged(launcher.command, ['-m', 'kubetx_participant.conformance', '--listen', '127.0.0.1:0', ...args], { cwd: repoRoot, env: launcher.env, tag: 'python/reference' });
  try {
    const port = await eventually('the reference participant listening', async () => {
      if (ref.exited()) throw new Error(`exited (${ref.child.exitCode}): ${ref.stderr()}`);
      return /listening on (\d+)/.exec(ref.stdout())?.[1];
    }, 30_000);
    return { address: `127.0.0.1:${port}`, stop: ref.stop };
  } catch (e) {
    await ref.stop();
    throw e;
  }
}

describe('bank-python: the Python example participant', () => {
  it('TCC and Saga transfers between two Python banks commit or roll back, with faults, and money is conserved', async () => {
    const started = Date.now();
    const retry = { initialInterval: '100ms', maxInterval: '1s', multiplier: 2, maxAttempts: 0 };
    await Promise.all(TRANSFERS.map((t) => bed.txs.create(transferTx(t, { namespace: bed.ns, address: (b) => banks[b]!.address, timeout: '60s', retry }))));
    const final = await Promise.all(TRANSFERS.map((t) => bed.txs.untilPhase(bed.ns, t.name, terminal, 90_000)));
    const { phase, uidToName } = outcomes(final);
    for (const t of TRANSFERS) {
      const refused = t.amount === OVER_BALANCE;
      const status = final.find((x) => x.metadata.name === t.name)?.status;
      expect(phase.get(t.name), `${t.name}: ${JSON.stringify(status)}`).toBe(refused ? rolledBackPhase(t.mode) : committedPhase(t.mode));
      if (refused) expect(status?.message).toMatch(REFUSED_FOR_FUNDS);
    }

    // Balances: the opening balance, minus what the committed transfers took out, plus what they put in;
    // nothing held or pending, each effect applied once and as the outcome says, the barrier agreeing.
    const read = await readBanks(bed.poolsOf([...BANKS]), uidToName);
    expect(read.problems).toEqual([]);
    expect(read.balances).toEqual(expectedBalances(OPENING_BALANCES, TRANSFERS.filter((x) => x.amount !== OVER_BALANCE)));
    expect(read.total).toBe(openingTotal(OPENING_BALANCES));
    expect(effectProblems(TRANSFERS, phase, read.effects)).toEqual([]);
    for (const t of TRANSFERS.filter((x) => x.amount === OVER_BALANCE)) {
      expect(read.effects.get(`${t.name}/out`) ?? [], `${t.name}: the refused debit changed nothing`).toEqual([]);
    }
    const faults = faultLines(BANKS.map((b) => banks[b]!));
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
    const args = db === 'postgres' ? ['--database-url', bed.url('reference')] : ['--sqlite', join(scratch, 'reference.db')];
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

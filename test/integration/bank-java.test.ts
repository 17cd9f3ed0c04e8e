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
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BankTestbed,
  REFUSED_FOR_FUNDS,
  bankLauncher,
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
  transferTx,
  withBalance,
  type BankProcess,
  type Transfer,
} from '../support/banks.js';
import { eventually } from '../support/env.js';
import { terminal } from '../support/payment.js';
import { repoRoot } from '../support/testenv-paths.js';

const FAULT_RATE = 0.2;
const OVER_BALANCE = 1_000_000;
/** Small JVMs that start fast: three of them on a loaded machine. */
const JVM_OPTIONS = ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xss512k'];

type BankName = 'alpha' | 'beta' | 'kit';
const BANKS: Array<'alpha' | 'beta'> = ['alpha', 'beta'];
const OPENING = 1_000;
const ACCOUNTS: Record<'alpha' | 'beta', string[]> = { alpha: ['a1', 'a2'], beta: ['b1', 'b2'] };
const OPENING_BALANCES = { alpha: withBalance(ACCOUNTS.alpha, OPENING), beta: withBalance(ACCOUNTS.beta, OPENING) };

const TRANSFERS: Array<Transfer<'alpha' | 'beta'>> = [
  { name: 'tcc-1', mode: 'TCC', from: { bank: 'alpha', account: 'a1' }, to: { bank: 'beta', account: 'b1' }, amount: 100 },
  { name: 'saga-1', mode: 'Saga', from: { bank: 'beta', account: 'b2' }, to: { bank: 'alpha', account: 'a2' }, amount: 50 },
  { name: 'tcc-2', mode: 'TCC', from: { bank: 'beta', account: 'b1' }, to: { bank: 'alpha', account: 'a1' }, amount: 70 },
  { name: 'saga-2', mode: 'Saga', from: { bank: 'alpha', account: 'a2' }, to: { bank: 'beta', account: 'b2' }, amount: 30 },
  { name: 'tcc-refused', mode: 'TCC', from: { bank: 'alpha', account: 'a1' }, to: { bank: 'beta', account: 'b2' }, amount: OVER_BALANCE },
  { name: 'saga-refused', mode: 'Saga', from: { bank: 'beta', account: 'b1' }, to: { bank: 'alpha', account: 'a2' }, amount: OVER_BALANCE },
];

let bed: BankTestbed;
const banks: Partial<Record<BankName, BankProcess>> = {};
const log = (m: string) => process.stderr.write(`[bank-java] ${m}\n`);

beforeAll(async () => {
  const started = Date.now();
  const launcher = await bankLauncher('java');
  log(launcher.note);
  const java = { ...launcher, args: [...JVM_OPTIONS, ...launcher.args] };
  bed = await BankTestbed.start('bank-java', ['alpha', 'beta', 'kit']);
  // The JDBC URL form for alpha, the libpq form (as bank-go takes it) for the others.
  const url = (bank: BankName) => (bank === 'alpha' ? `jdbc:postgresql://127.0.0.1:${bed.postgres.port}/bank_alpha?user=kubetx` : bed.url(bank));
  const start = (name: BankName, faults: { faultRate: number; faultSeed: number } | undefined) =>
    bed.startBank(java, { name, databaseUrl: url(name), ...faults, startTimeoutMs: 60_000 });
  const faults = { faultRate: FAULT_RATE, faultSeed: 17 };
  const [alpha, beta, kit] = await Promise.all([start('alpha', faults), start('beta', faults), start('kit', undefined)]);
  Object.assign(banks, { alpha, beta, kit });
  for (const bank of BANKS) {
    await openAccounts(banks[bank]!.address, OPENING_BALANCES[bank]);
    expect(await readAccount(banks[bank]!.address, ACCOUNTS[bank][0]!)).toMatchObject({ found: true, balance: OPENING, held: 0 });
  }
  await bed.startOperator();
  log(`set up in ${Date.now() - started} ms`);
}, 600_000);

afterAll(async () => {
  await bed?.close();
});

describe('bank-java: the Java example participant', () => {
  it('TCC and Saga transfers between two Java banks commit or roll back, each effect applied once', async () => {
    const started = Date.now();
    await Promise.all(TRANSFERS.map((t) => bed.txs.create(transferTx(t, { namespace: bed.ns, address: (b) => banks[b]!.address, timeout: '60s' }))));
    const final = await eventually(
      'every transfer terminal',
      async () => {
        const list = await bed.txs.list(bed.ns);
        return list.length === TRANSFERS.length && list.every((t) => terminal.has(t.status?.phase ?? '')) ? list : undefined;
      },
      90_000,
    );
    const { phase, message, uidToName } = outcomes(final);
    for (const t of TRANSFERS) {
      const refused = t.amount === OVER_BALANCE;
      expect(phase.get(t.name), `${t.name}: ${message.get(t.name)}`).toBe(refused ? rolledBackPhase(t.mode) : committedPhase(t.mode));
      if (refused) expect(message.get(t.name)).toMatch(REFUSED_FOR_FUNDS);
    }

    // Balances: opening, minus what committed transfers took out, plus what they put in; nothing held or
    // pending; effects applied once and as the outcome says; the barrier agrees.
    const read = await readBanks(bed.poolsOf(BANKS), uidToName);
    expect(read.problems).toEqual([]);
    expect(read.balances).toEqual(expectedBalances(OPENING_BALANCES, TRANSFERS.filter((x) => x.amount !== OVER_BALANCE)));
    expect(read.total).toBe(openingTotal(OPENING_BALANCES));
    expect(effectProblems(TRANSFERS, phase, read.effects)).toEqual([]);
    const faults = faultLines(BANKS.map((b) => banks[b]!)).length;
    log(`${TRANSFERS.length} transfers terminal and checked in ${Date.now() - started} ms (${faults} faults injected)`);
  }, 120_000);

  it('passes the conformance kit (tcc, saga) with --conformance-hook', async () => {
    const started = Date.now();
    const { code, stdout, stderr } = await runKitBin(join(repoRoot, 'bin/kubetx-conformance'), ['--target', banks.kit!.address, '--services', 'tcc,saga'], 90_000);
    log(`conformance kit: exit ${code} in ${Date.now() - started} ms; ${stdout.trim().split('\n').pop()}`);
    expect(code, `${stdout}${stderr}`).toBe(0);
    expect(stdout).toMatch(/all \d+ rules passed/);
  }, 120_000);
});

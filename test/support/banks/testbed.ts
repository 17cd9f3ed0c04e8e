/**
 * What a bank test runs in: a fresh namespace, a PostgreSQL server with a
 * database of each bank's own (bank_<name>), the operator watching the
 * namespace, and the banks it started; `close()` (afterAll) SIGKILLs the
 * operator, stops every bank (SIGTERM) and the server.
 */
import type * as k8s from '@kubernetes/client-node';
import type pg from 'pg';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../env.js';
import { startOperator, type OperatorProcess } from '../operator.js';
import { transactions } from '../payment.js';
import { startPostgres, stopPostgres, type PostgresServer } from '../postgres.js';
import { bankPool, createDatabases } from './databases.js';
import { startBank, type BankLauncher, type BankProcess, type StartBankOptions } from './launch.js';

export class BankTestbed {
  operator: OperatorProcess | undefined;
  /** Every bank started through startBank, in order. */
  readonly banks: BankProcess[] = [];
  private readonly pools = new Map<string, pg.Pool>();

  private constructor(
    readonly kc: k8s.KubeConfig,
    readonly ns: string,
    readonly txs: ReturnType<typeof transactions>,
    readonly postgres: PostgresServer,
    /** Database name → its libpq URL. */
    readonly urls: Record<string, string>,
  ) {}

  /** A namespace named after `label`, and a PostgreSQL server with the database bank_<name> of each of `databases`. */
  static async start(label: string, databases: string[]): Promise<BankTestbed> {
    const kc = kubeConfig();
    const ns = await freshNamespace(kc, label);
    const postgres = await startPostgres();
    try {
      return new BankTestbed(kc, ns, transactions(kc), postgres, await createDatabases(postgres, databases));
    } catch (err) {
      await postgres.stop();
      throw err;
    }
  }

  url(database: string): string {
    const url = this.urls[database];
    if (!url) throw new Error(`no database bank_${database} in this testbed`);
    return url;
  }

  /** A pool on bank_<name> (one per name, ended by close). */
  pool(name: string): pg.Pool {
    let p = this.pools.get(name);
    if (!p) this.pools.set(name, (p = bankPool(this.postgres, name)));
    return p;
  }

  /** The pools of `names`, by name (as readBanks takes them). */
  poolsOf<B extends string>(names: B[]): Record<B, pg.Pool> {
    return Object.fromEntries(names.map((n) => [n, this.pool(n)])) as Record<B, pg.Pool>;
  }

  /** startBank, the bank stopped by close unless stopped before. */
  async startBank(launcher: BankLauncher, o: StartBankOptions): Promise<BankProcess> {
    const bank = await startBank(launcher, o);
    this.banks.push(bank);
    return bank;
  }

  async startOperator(): Promise<OperatorProcess> {
    this.operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [this.ns] });
    return this.operator;
  }

  /** SIGKILLs the operator and starts a new one. */
  async restartOperator(): Promise<void> {
    await this.operator?.kill('SIGKILL');
    await this.startOperator();
  }

  /** Stops everything; resolves with each bank's exit code (0: a graceful stop). */
  async close(): Promise<Array<number | null>> {
    await this.operator?.kill('SIGKILL');
    const codes = await Promise.all(this.banks.map((b) => b.stop()));
    await stopPostgres(this.postgres, [...this.pools.values()]);
    return codes;
  }
}

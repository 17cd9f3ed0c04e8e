/**
 * A bank test's own watch of its namespace's transactions (TransactionWatch):
 * the phase each was seen in last and when anything last moved, so the test
 * waits while they make progress (whileProgressing) rather than for a fixed
 * time, and a stall names every transaction not yet terminal.
 */
import type * as k8s from '@kubernetes/client-node';
import { whileProgressing } from '../env.js';
import { terminal, type transactions } from '../payment.js';
import { TransactionWatch } from '../tx-watch.js';

export class PhaseWatch {
  /** Transaction name → the phase seen last ('' before it has one). */
  readonly phases = new Map<string, string>();
  private lastProgress = Date.now();
  private readonly watch: TransactionWatch;

  private constructor(
    kc: k8s.KubeConfig,
    private readonly ns: string,
    private readonly txs: ReturnType<typeof transactions>,
  ) {
    this.watch = new TransactionWatch(kc, ns, (obj) => {
      const phase = obj.status?.phase ?? '';
      if (this.phases.get(obj.metadata.name!) !== phase) this.lastProgress = Date.now();
      this.phases.set(obj.metadata.name!, phase);
    });
  }

  static async start(kc: k8s.KubeConfig, ns: string, txs: ReturnType<typeof transactions>): Promise<PhaseWatch> {
    const w = new PhaseWatch(kc, ns, txs);
    await w.watch.start();
    return w;
  }

  /** Counts as progress now (after creating transactions, restarting the operator). */
  touch(): void {
    this.lastProgress = Date.now();
  }

  phase(name: string): string {
    return this.phases.get(name) ?? '';
  }

  terminalCount(): number {
    return [...this.phases.values()].filter((p) => terminal.has(p)).length;
  }

  /** Waits for `probe` to return true while something moves within `stallMs`; a stall names the open transactions. */
  async until(what: string, probe: () => boolean, stallMs: number): Promise<void> {
    await whileProgressing(what, async () => (probe() ? true : undefined), () => this.lastProgress, stallMs, () => this.openReport());
  }

  /** Waits until `count` transactions are terminal. */
  untilTerminal(count: number, what: string, stallMs: number): Promise<void> {
    return this.until(what, () => this.terminalCount() === count, stallMs);
  }

  stop(): void {
    this.watch.stop();
  }

  /** Each transaction not yet terminal: phase, message, and each branch's state and last error. */
  private async openReport(): Promise<string> {
    const open = (await this.txs.list(this.ns)).filter((t) => !terminal.has(t.status?.phase ?? ''));
    return open.map((t) => `${t.metadata.name}: ${t.status?.phase} ${t.status?.message ?? ''} ${JSON.stringify(t.status?.branches?.map((b) => [b.name, b.state, b.lastError]))}`).join('\n');
  }
}

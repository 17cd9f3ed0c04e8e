/**
 * kubectl dtx against the real API server and the operator, run as a child
 * process (tsx on src/cli) the way a user runs it: every verb, the flags that
 * change what it prints, and the error paths (not found, forbidden, bad flags,
 * a refused abort, a timeout). Also: the per-branch call history in status and
 * what it costs in bytes.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, setFault } from '../../examples/payment/faults.js';
import { dbPathIn } from '../../examples/payment/db.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { serviceAccountKubeconfig } from '../support/chart.js';
import { runEntry, TSX, type CliResult } from '../support/cli.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';

const root = join(import.meta.dirname, '../..');

let kc: k8s.KubeConfig;
let ns: string;
let ns2: string;
let unwatched: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
let nextOrder = 7000;

const exec = (entry: string, args: string[], kubeconfig = kubeconfigPath()) => runEntry(entry, args, kubeconfig);
const dtx = (...args: string[]) => exec('src/cli/kubectl-dtx.ts', args);

async function committed(name: string, namespace: string, labels: Record<string, string> = {}): Promise<DistributedTransaction> {
  const orderId = nextOrder++;
  pay.addOrders([orderId]);
  const tx = payOrder(pay, { name, namespace, orderId });
  tx.metadata.labels = labels;
  await txs.create(tx);
  return txs.untilPhase(namespace, name, ['Committed']);
}

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'cli');
  ns2 = await freshNamespace(kc, 'cli2');
  unwatched = await freshNamespace(kc, 'cli-unwatched');
  txs = transactions(kc);
  pay = await startPayment();
  // Every answer in status.branches[].history (the default records failures only), so `show` has calls to list.
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns, ns2], args: ['--call-history', 'all'] });
  await committed('alpha', ns, { app: 'a' });
  await committed('beta', ns, { app: 'b' });
  await committed('gamma', ns2, { app: 'a' });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
});

describe('kubectl dtx list', () => {
  it('prints a table of the namespace', async () => {
    const r = await dtx('list', '-n', ns);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+MODE\s+PHASE\s+BRANCHES\s+AGE\s+MESSAGE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ['alpha', 'TCC', 'Committed', '4/4'],
      ['beta', 'TCC', 'Committed', '4/4'],
    ]);
    expect(lines[1]).toMatch(/all 4 branches confirmed$/);
  });

  it('-A adds a NAMESPACE column and lists every namespace; -l and --phase filter', async () => {
    const all = await dtx('list', '-A');
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+MODE/);
    expect(all.stdout).toMatch(new RegExp(`${ns}\\s+alpha\\s+TCC`));
    expect(all.stdout).toMatch(new RegExp(`${ns2}\\s+gamma\\s+TCC`));

    const labelled = await dtx('list', '-A', '-l', 'app=a', '-o', 'name');
    expect(labelled.stdout.trim().split('\n').sort()).toEqual(['distributedtransaction.kubetx.io/alpha', 'distributedtransaction.kubetx.io/gamma']);

    const phase = await dtx('list', '-n', ns, '--phase', 'Committed,Aborted', '-o', 'name');
    expect(phase.stdout.trim().split('\n')).toEqual(['distributedtransaction.kubetx.io/alpha', 'distributedtransaction.kubetx.io/beta']);
    const none = await dtx('list', '-n', ns, '--phase', 'Aborted');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(`No resources found in ${ns} namespace.`);
  });

  it('-o wide, json, yaml, name', async () => {
    const wide = await dtx('list', '-n', ns, '-o', 'wide');
    expect(wide.stdout.split('\n')[0]).toMatch(/^NAME\s+MODE\s+PHASE\s+BRANCHES\s+AGE\s+DECISION\s+STALLED\s+MESSAGE$/);
    expect(wide.stdout).toMatch(/alpha\s+TCC\s+Committed\s+4\/4\s+\S+\s+Confirm\s+False/);
    const json = JSON.parse((await dtx('list', '-n', ns, '-o', 'json')).stdout) as { kind: string; items: DistributedTransaction[] };
    expect(json.kind).toBe('List');
    expect(json.items.map((t) => t.metadata.name)).toEqual(['alpha', 'beta']);
    const yaml = (await dtx('list', '-n', ns, '-o', 'yaml')).stdout;
    expect(yaml).toMatch(/^kind: List$/m);
    expect(yaml).toMatch(/name: alpha/);
    expect((await dtx('list', '-n', ns, '-o', 'name')).stdout).toBe('distributedtransaction.kubetx.io/alpha\ndistributedtransaction.kubetx.io/beta\n');
    const bad = await dtx('list', '-n', ns, '-o', 'csv');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown output format "csv"/);
  });
});

describe('kubectl dtx get', () => {
  it('prints one row, or the object as json/yaml', async () => {
    const row = await dtx('get', 'alpha', '-n', ns);
    expect(row.code, row.stderr).toBe(0);
    expect(row.stdout).toMatch(/^NAME\s+MODE\s+PHASE/);
    expect(row.stdout).toMatch(/alpha\s+TCC\s+Committed\s+4\/4/);
    const json = JSON.parse((await dtx('get', 'alpha', '-n', ns, '-o', 'json')).stdout) as DistributedTransaction;
    expect(json.status?.phase).toBe('Committed');
    expect((await dtx('get', 'alpha', '-n', ns, '-o', 'yaml')).stdout).toMatch(/^ {2}phase: Committed$/m);
  });

  it('a missing transaction: the API server\'s Status, kubectl style, exit 1', async () => {
    const r = await dtx('get', 'nope', '-n', ns);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('Error from server (NotFound): distributedtransactions.kubetx.io "nope" not found\n');
    expect((await dtx('show', 'nope', '-n', ns)).stderr).toMatch(/^Error from server \(NotFound\)/);
  });

  it('-w without a terminal: one line per change until the final phase', async () => {
    const orderId = nextOrder++;
    pay.addOrders([orderId]);
    await txs.create(payOrder(pay, { name: 'watched', namespace: ns, orderId }));
    const r = await dtx('get', 'watched', '-n', ns, '-w');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^\\S+Z ${ns}/watched Committed 4/4 order=Confirmed inventory=Confirmed credit=Confirmed warehouse=Confirmed$`));
    // No line repeats the one before it (a change each).
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.split(' ').slice(1)).not.toEqual(lines[i - 1]!.split(' ').slice(1));
  });
});

describe('kubectl dtx get -w on a terminal', () => {
  it('draws the per-branch view (clear screen, redraw) and exits at the final phase', async () => {
    // script(1) gives the CLI a pseudo-terminal for stdout.
    const cmd = [process.execPath, TSX, join(root, 'src/cli/kubectl-dtx.ts'), 'get', 'beta', '-w', '-n', ns, '--kubeconfig', kubeconfigPath()].map((a) => `'${a}'`).join(' ');
    const r = await new Promise<CliResult>((resolve) =>
      execFile('script', ['-qec', cmd, '/dev/null'], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr })),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('\u001b[H\u001b[2J');
    expect(r.stdout).toMatch(/Phase:\s+Committed/);
    expect(r.stdout).toMatch(/BRANCH\s+STATE\s+ATTEMPTS/);
    expect(r.stdout).toMatch(/order\s+Confirmed\s+1/);
  });
});

describe('kubectl dtx show and the call history', () => {
  it('shows each branch\'s calls and decoded results', async () => {
    const r = await dtx('show', 'alpha', '-n', ns);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Phase:\s+Committed/);
    expect(r.stdout).toMatch(/Calls \(last 10 per branch\):/);
    expect(r.stdout).toMatch(/order\s+Try\s+1\s+\S+Z\s+ok/);
    expect(r.stdout).toMatch(/order\s+Confirm\s+1\s+\S+Z\s+ok/);
    expect(r.stdout).toMatch(/Results:\n {2}inventory \((json|text|base64)\)/);
  });

  it('status keeps one record per answered call with --call-history all, bounded; what it costs a committed 4-branch TCC', async () => {
    const tx = await txs.get(ns, 'alpha');
    for (const b of tx.status!.branches!) {
      expect(b.history?.map((h) => `${h.method}:${h.attempt}:${h.outcome}`)).toEqual(['Try:1:ok', 'Confirm:1:ok']);
      for (const h of b.history!) expect(Date.parse(h.time)).toBeGreaterThan(0);
    }
    const withHistory = JSON.stringify(tx.status).length;
    const without = JSON.stringify({ ...tx.status, branches: tx.status!.branches!.map(({ history: _h, ...b }) => b) }).length;
    console.log(`status of a committed 4-branch TCC: ${without} bytes without history, ${withHistory} with (+${withHistory - without})`);
    expect(withHistory - without).toBeLessThan(1200);
  });
});

describe('kubectl dtx abort', () => {
  it('refused once decided: the operator\'s reason, exit 3', async () => {
    const r = await dtx('abort', 'alpha', '-n', ns, '--reason', 'too late');
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/abort requested/);
    expect(r.stderr).toMatch(/abort refused by the operator: transaction already (Committed|decided Confirm)/);
    const again = await dtx('abort', 'alpha', '-n', ns, '--reason', 'too late');
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/already handled/);
  });

  it('accepted before the decision: exit 0 and the transaction aborts', async () => {
    const inventory = dbPathIn(pay.dir, 'inventory');
    setFault(inventory, { method: 'Try', mode: 'hang' });
    const orderId = nextOrder++;
    pay.addOrders([orderId]);
    try {
      await txs.create(payOrder(pay, { name: 'abort-me', namespace: ns, orderId, timeout: '120s', callTimeout: '1s' }));
      await eventually('a Try in flight', async () => ((await txs.get(ns, 'abort-me')).status?.branches?.some((b) => b.attempts > 0) ? true : undefined));
      const r = await dtx('abort', 'abort-me', '-n', ns, '--reason', 'customer cancelled');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/abort accepted by the operator: decision Cancel/);
    } finally {
      clearFaults(inventory);
    }
    await txs.untilPhase(ns, 'abort-me', ['Aborted']);
  });

  it('needs --reason: usage error, exit 2', async () => {
    const r = await dtx('abort', 'alpha', '-n', ns);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/abort needs --reason/);
  });
});

describe('kubectl dtx retry', () => {
  it('waits for the acknowledgement: exit 0', async () => {
    const r = await dtx('retry', 'gamma', '-n', ns2);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/retry requested for .*\nretry acknowledged by the operator: phase Committed/);
    const tx = await txs.get(ns2, 'gamma');
    expect(tx.status?.retryAcknowledged).toBe(tx.metadata.annotations?.['kubetx.io/retry']);
  });

  it('no operator watching: times out after --timeout, exit 4', async () => {
    const orderId = nextOrder++;
    pay.addOrders([orderId]);
    await txs.create(payOrder(pay, { name: 'orphan', namespace: unwatched, orderId }));
    const r = await dtx('retry', 'orphan', '-n', unwatched, '--timeout', '1s');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/timed out after 1s waiting for the operator/);
    const bad = await dtx('retry', 'orphan', '-n', unwatched, '--timeout', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--timeout: invalid duration "soon"/);
  });

  it('a user without patch rights: Forbidden from the server, exit 1', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'viewer' } } });
    await rbac.createNamespacedRole({
      namespace: ns,
      body: { metadata: { name: 'dtx-viewer' }, rules: [{ apiGroups: ['kubetx.io'], resources: ['distributedtransactions'], verbs: ['get', 'list', 'watch'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'dtx-viewer' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'dtx-viewer' },
        subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
      },
    });
    const { path } = await serviceAccountKubeconfig(kc, ns, 'viewer');
    const viewer = (...args: string[]) => exec('src/cli/kubectl-dtx.ts', args, path);
    await eventually('the Role to apply', async () => ((await viewer('get', 'beta', '-n', ns)).code === 0 ? true : undefined));
    const r = await viewer('retry', 'beta', '-n', ns);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^Error from server \\(Forbidden\\): distributedtransactions.kubetx.io "beta" is forbidden: User "system:serviceaccount:${ns}:viewer" cannot patch resource "distributedtransactions"`));
    const all = await viewer('list', '-A');
    expect(all.code).toBe(1);
    expect(all.stderr).toMatch(/^Error from server \(Forbidden\)/);
  });
});

describe('usage errors and completion', () => {
  it('bad flag, unknown verb, missing NAME: exit 2 with the usage', async () => {
    for (const args of [['list', '--bogus'], ['frobnicate'], ['show'], []]) {
      const r = await dtx(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/usage:/);
    }
    const help = await dtx('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/kubectl dtx retry/);
  });

  it('completion scripts for bash, zsh and fish mention every verb', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await dtx('completion', shell);
      expect(r.code, r.stderr).toBe(0);
      for (const verb of ['list', 'get', 'show', 'retry', 'abort', 'completion']) expect(r.stdout).toContain(verb);
      expect(r.stdout).toContain('list -o name');
    }
    expect((await dtx('completion', 'tcsh')).code).toBe(2);
  });

  it('kubectl_complete-dtx completes verbs and transaction names', async () => {
    const verbs = await exec('src/cli/kubectl_complete-dtx.ts', ['re']);
    expect(verbs.stdout).toBe('retry\n:4\n');
    const names = await exec('src/cli/kubectl_complete-dtx.ts', ['show', '-n', ns, 'a']);
    expect(names.stdout.trim().split('\n')).toEqual(['abort-me', 'alpha', ':4']);
  });
});

/**
 * Where kube-apiserver spends a status write: a CPU profile (pprof) of raw
 * status writes on the CRD as the chart installs it, and the share of it in
 * CEL validation.
 *
 *   npx tsx bench/apiserver-profile.ts [branches] [git ref] [--status-guard]
 *
 * branches (default 4): the transaction's size. git ref (default: the working
 * tree): take crds/ from that commit instead, rendered through this chart (so
 * with the spec guard's rules left out), to compare two CRDs' CEL cost.
 * --status-guard: also apply the chart's status guard (the
 * ValidatingAdmissionPolicy every status write passes in production), with
 * the benchmark's admin user allowed, and print what admission policies cost
 * per write.
 *
 * A control plane of its own with --profiling=true, the CRD installed as the
 * chart installs it (with its spec guard, which status writes never reach);
 * 32 objects of the
 * benchmark's spec with the status of a committed transaction (fabricated:
 * every branch Confirmed), one writer each, PUT .../status with the
 * resourceVersion precondition for 22 s; a 15 s profile from the 3rd second.
 * Prints the profile's path, the writes in the profile window and, per
 * write, kube-apiserver CPU and the part under cel.(*Validator).Validate (GC
 * of what CEL allocates is not in that figure). Needs `go` (go tool pprof).
 * Profiling itself costs a little: compare figures of this tool with each
 * other, not with the `rules` figure.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DistributedTransaction, TransactionStatus } from '../src/api/types.js';
import { stringify } from 'yaml';
import { applyServerSide, chartDir, installCrdsAsChart, renderChart, validatingPolicy } from '../test/support/chart.js';
import { startControlPlane } from '../test/support/control-plane.js';
import { repoRoot } from '../test/support/testenv-paths.js';
import { Api, newNamespace } from './lib/kube.js';
import { transaction } from './lib/manifests.js';
import { createTargets, statusWriteLoop } from './lib/status-writes.js';

const WRITERS = 32;
const WRITE_MS = 22_000;
const PROFILE_FROM_MS = 3_000;
const PROFILE_S = 15;

const args = process.argv.slice(2).filter((a) => a !== '--status-guard');
const withStatusGuard = process.argv.includes('--status-guard');
const branches = Number(args[0] ?? 4);
const ref = args[1];

/** This chart, with crds/ of `ref` in place of the working tree's. */
function chartWithCrdsOf(ref: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'kubetx-profile-chart-')), 'kubetx');
  cpSync(chartDir, dir, { recursive: true });
  const file = 'kubetx.io_distributedtransactions.yaml';
  writeFileSync(join(dir, 'files/crds', file), execFileSync('git', ['show', `${ref}:crds/${file}`], { cwd: repoRoot }));
  return dir;
}

function committedStatus(tx: DistributedTransaction): TransactionStatus {
  const now = new Date().toISOString();
  return {
    phase: 'Committed',
    decision: 'Confirm',
    decisionTime: now,
    startTime: now,
    completionTime: now,
    observedGeneration: 1,
    conditions: [{ type: 'Succeeded', status: 'True', reason: 'Committed', message: 'every branch confirmed', lastTransitionTime: now, observedGeneration: 1 }],
    branches: tx.spec.branches.map((b) => ({ name: b.name, state: 'Confirmed', attempts: 1, lastAttemptTime: now, result: 'eyJyZXNlcnZhdGlvbiI6InItMDAwMSJ9' })),
  } as TransactionStatus;
}

/** Seconds of samples in a node's cumulative column (`go tool pprof -top -cum`), 0 when absent. */
function cumSeconds(top: string, fn: string): number {
  const line = top.split('\n').find((l) => l.trimEnd().endsWith(fn));
  const cum = line?.trim().split(/\s+/)[3];
  return cum ? (cum.endsWith('ms') ? Number(cum.slice(0, -2)) / 1000 : Number(cum.replace(/s$/, ''))) : 0;
}

const chart = ref ? chartWithCrdsOf(ref) : undefined;
const cp = await startControlPlane({ fsync: true, apiServerArgs: ['--profiling=true'] });
try {
  const api = await Api.fromKubeconfig(cp.kubeconfigPath);
  await installCrdsAsChart(cp.kubeconfigPath, { release: 'profile', root: repoRoot, chart });
  if (withStatusGuard) {
    // The test control plane's admin certificate is CN=admin: the one writer the status guard lets through here.
    const rendered = renderChart({ release: 'profile', namespace: 'kubetx-system', chart, values: { statusGuard: { allowedUsers: ['admin'] } } });
    applyServerSide(cp.kubeconfigPath, validatingPolicy(rendered, 'status-guard').map((o) => stringify(o)).join('---\n'));
  }
  const ns = await newNamespace(api, 'profile');
  const collection = `/apis/kubetx.io/v1alpha1/namespaces/${ns}/distributedtransactions`;
  const addresses = ['127.0.0.1:1'];
  const targets = await createTargets(WRITERS, (i) => api.json('POST', collection, transaction(`p${i}`, ns, { branches, addresses })));
  let written = 0;
  const loop = statusWriteLoop({
    api,
    collection,
    apiVersion: 'kubetx.io/v1alpha1',
    namespace: ns,
    targets,
    status: committedStatus(transaction('x', ns, { branches, addresses })),
    durationMs: WRITE_MS,
    tag: 'profile',
    onOk: () => written++,
    onError: (code, body) => console.error(`status write ${code}: ${body.slice(0, 300)}`),
  });
  await new Promise((r) => setTimeout(r, PROFILE_FROM_MS));
  const atStart = written;
  const out = join(tmpdir(), `kubetx-apiserver-${branches}-${ref ?? 'worktree'}-${Date.now()}.pprof`);
  // Asynchronous: a synchronous child would stop this process's writers for the whole profile.
  await promisify(execFile)('curl', ['-sf', '--cacert', join(cp.dir, 'ca.crt'), '--cert', join(cp.dir, 'admin.crt'), '--key', join(cp.dir, 'admin.key'), `${cp.server}/debug/pprof/profile?seconds=${PROFILE_S}`, '-o', out]);
  const inWindow = written - atStart;
  await loop;
  const top = execFileSync('go', ['tool', 'pprof', '-top', '-cum', '-nodecount=2000', out], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  const total = Number(/Total samples = ([\d.]+)s/.exec(top)?.[1] ?? NaN);
  const cel = cumSeconds(top, 'schema/cel.(*Validator).Validate');
  const policies = cumSeconds(top, 'policy/validating.(*Plugin).Validate');
  const ms = (s: number) => ((s * 1000) / inWindow).toFixed(2);
  console.log(`${out}: ${branches} branches, CRD ${ref ? `of ${ref}` : 'of the working tree'} as the chart renders it; ${inWindow} status writes in the ${PROFILE_S} s profile`);
  console.log(`per status write: kube-apiserver CPU ${ms(total)} ms, of it in CEL validation ${ms(cel)} ms (${((100 * cel) / total).toFixed(1)} %)`);
  console.log(`validating admission policies (status guard ${withStatusGuard ? 'applied' : 'not applied'}): ${ms(policies)} ms per write (${((100 * policies) / total).toFixed(1)} %)`);
} finally {
  await cp.stop();
  if (chart) rmSync(join(chart, '..'), { recursive: true, force: true });
}

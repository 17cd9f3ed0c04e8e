/**
 * A/B: the operator of a baseline (any git ref, checked out as a worktree) and
 * of the working tree, on one control plane, measured in alternating rounds
 * (A B B A A B …) so that both see the same machine while its load moves.
 *
 * Each side runs as it installs by default, on a control plane of its own
 * (same binaries, both up for the whole run, only one loaded at a time): its
 * CRD, its operator defaults (plus the benchmark's --workers /
 * --resync-period) and, when that side's chart renders them, its
 * MutatingAdmissionPolicy (the finalizer policy) and its spec guard (with
 * the CRD as the chart renders it then: without the spec transition rules).
 * The status guard is left out on both sides: it admits only the operator's
 * ServiceAccount, and the benchmark's operator runs as the admin.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { DistributedTransaction } from '../src/api/types.js';
import { applyFinalizerPolicy, installCrdsAsChart } from '../test/support/chart.js';
import { startControlPlane, type ControlPlane } from '../test/support/control-plane.js';
import { startOperator, type OperatorProcess } from '../test/support/operator.js';
import { repoRoot } from '../test/support/testenv-paths.js';
import { buildOperator } from './lib/build.js';
import { controlPlanePids, type CpuSnapshot } from './lib/cpu.js';
import { f0, f1, f2 } from './lib/format.js';
import { Api, newNamespace } from './lib/kube.js';
import { closedLoop, commitProbe, latencies, Tracker } from './lib/load.js';
import { transaction, txPath } from './lib/manifests.js';
import { measure, type PerTx } from './lib/per-tx.js';

export interface AbEnv {
  addresses: string[];
  operatorArgs: string[];
  operatorEnv: NodeJS.ProcessEnv;
  say(line: string): void;
  /** Raw status writes/s of the run's main API server (the ceiling figure; same binaries), when measured. */
  ceiling?: number;
}

interface Side {
  label: string;
  cp: ControlPlane;
  api: Api;
  pids: { etcd?: number; apiserver?: number };
  /** What it runs: a ref and commit, or "working tree". */
  what: string;
  root: string;
  ns: string;
  tracker: Tracker;
  op: OperatorProcess;
  finalizerPolicy: boolean;
  /** Its chart's spec guard applied, and the CRD as that chart renders it (no spec transition rules). */
  specGuard: boolean;
}

interface Round {
  side: string;
  branches: number;
  txPerSec: number;
  p50: number;
  per: PerTx;
  cpu: CpuSnapshot;
  n: number;
}

const ROUNDS = Number(process.env.KUBETX_BENCH_AB_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.KUBETX_BENCH_AB_CLIENTS ?? 64);
/** Unmeasured rounds per side and branch count before the measured ones. */
const WARMUP_ROUNDS = Number(process.env.KUBETX_BENCH_AB_WARMUP ?? 1);
const STEP_MS = Number(process.env.KUBETX_BENCH_STEP_MS ?? 8_000);
const BRANCHES = [4, 16];

const git = (args: string[], cwd = repoRoot) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** A detached worktree of `ref` under .tmp/, sharing this checkout's node_modules. */
export function baselineCheckout(ref: string): { root: string; commit: string; notes: string[] } {
  const commit = git(['rev-parse', '--verify', `${ref}^{commit}`]);
  const root = join(repoRoot, '.tmp', 'bench-baseline', commit.slice(0, 12));
  if (!existsSync(join(root, 'src/main.ts'))) {
    mkdirSync(join(repoRoot, '.tmp', 'bench-baseline'), { recursive: true });
    git(['worktree', 'add', '--detach', '--force', root, commit]);
  }
  if (!existsSync(join(root, 'node_modules'))) symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
  buildOperator(root);
  const notes: string[] = [];
  const differs = (path: string) => {
    try {
      execFileSync('git', ['diff', '--quiet', commit, '--', path], { cwd: repoRoot });
      return false;
    } catch {
      return true;
    }
  };
  if (differs('package-lock.json')) notes.push('its package-lock.json differs from the working tree\'s; it runs with the working tree\'s node_modules');
  if (differs('crds')) notes.push('its CRD differs from the working tree\'s (each side runs with its own)');
  return { root, commit, notes };
}

async function startSide(env: AbEnv, label: string, what: string, root: string): Promise<Side> {
  const cp = await startControlPlane({ fsync: true });
  try {
    const release = `ab-${label.replace(/\W+/g, '-')}`;
    const specGuard = await installCrdsAsChart(cp.kubeconfigPath, { release, root });
    const api = await Api.fromKubeconfig(cp.kubeconfigPath);
    const ns = await newNamespace(api, 'ab');
    const tracker = new Tracker(api, ns);
    await tracker.ready();
    const finalizerPolicy = applyFinalizerPolicy(cp.kubeconfigPath, ns, { release, chart: join(root, 'charts/kubetx') }).length > 0;
    const op = await startOperator({ kubeconfig: cp.kubeconfigPath, namespaces: [ns], args: env.operatorArgs, env: env.operatorEnv, root, built: true });
    const side: Side = { label, cp, api, pids: controlPlanePids(cp.dir), what, root, ns, tracker, op, finalizerPolicy, specGuard };
    const probed = await commitProbe({ api, tracker, make: (name) => tx(env, side, name, 4), prefix: 'probe', wantFinalizer: finalizerPolicy });
    if (finalizerPolicy && !probed.finalizerFromCreate) throw new Error(`${label}: the finalizer policy never took effect`);
    const probe = await api.json<DistributedTransaction>('GET', txPath(ns, probed.name));
    env.say(`A/B ${label} (${what}): own control plane ${cp.server}, operator pid ${op.child.pid}, finalizer policy ${finalizerPolicy ? 'on' : 'none in its chart'}, CRD ${specGuard ? "as its chart renders it, with the spec guard (no spec transition rules)" : 'of its crds/'}, committed status ${JSON.stringify(probe.status).length} B`);
    return side;
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

function tx(env: AbEnv, side: Side, name: string, branches: number): DistributedTransaction {
  return transaction(name, side.ns, { branches, addresses: env.addresses });
}

async function round(env: AbEnv, side: Side, branches: number, i: number): Promise<Round> {
  const { r, per, cpu } = await measure(side.api, side.op, side.pids, () =>
    closedLoop({ api: side.api, tracker: side.tracker, concurrency: CONCURRENCY, warmupMs: 2000, durationMs: STEP_MS, make: (n) => tx(env, side, n, branches), prefix: i < 0 ? `b${branches}w${-i}` : `b${branches}r${i}` }),
  );
  const txPerSec = r.measured.filter((s) => s.phase === 'Committed').length / (r.windowMs / 1000);
  const out = { side: side.label, branches, txPerSec, p50: latencies(r.measured).p50, per, cpu, n: r.samples.length };
  env.say(
    `A/B ${i < 0 ? 'warm-up (not counted)' : `round ${i + 1}`} ${side.label}, ${branches} branches: ${f1(txPerSec)} tx/s, ${f2(per.allWrites)} writes/tx (${f2(per.statusPutOk)} status, ${f2(per.events)} Events), ` +
      `CPU ms/tx operator ${f1(cpu.operator)} / apiserver ${f1(cpu.apiserver)} / etcd ${f1(cpu.etcd)}${r.errors ? `, ${r.errors} errors` : ''}`,
  );
  return out;
}

/** Weighted by transactions, so a short round does not count as much as a long one. */
function mean(rs: Round[], f: (r: Round) => number): number {
  const w = rs.reduce((a, r) => a + r.n, 0);
  return rs.reduce((a, r) => a + f(r) * r.n, 0) / (w || 1);
}

export async function abFigure(env: AbEnv, baselineRef: string): Promise<string> {
  const base = baselineCheckout(baselineRef);
  for (const n of base.notes) env.say(`A/B baseline ${baselineRef}: ${n}`);
  const dirty = git(['status', '--porcelain']) !== '';
  const sides: Side[] = [];
  const rounds: Round[] = [];
  try {
    sides.push(await startSide(env, 'baseline', `${baselineRef} = ${base.commit.slice(0, 12)}`, base.root));
    sides.push(await startSide(env, 'working tree', `${git(['rev-parse', '--short=12', 'HEAD'])}${dirty ? ' + uncommitted changes' : ''}`, repoRoot));
    // Not counted: a fresh operator's first seconds include V8 compiling its hot paths (round 1 used to read
    // 1.5-2x the CPU per transaction of rounds 2 and 3, on both sides); the targets are for a warm operator.
    for (let w = 0; w < WARMUP_ROUNDS; w++) for (const b of BRANCHES) for (const s of sides) await round(env, s, b, -1 - w);
    for (const b of BRANCHES) {
      for (let i = 0; i < ROUNDS; i++) {
        // A B, B A, A B: each side goes first as often as the other.
        const order = i % 2 === 0 ? sides : [...sides].reverse();
        for (const s of order) rounds.push(await round(env, s, b, i));
      }
    }
  } finally {
    for (const s of sides) {
      s.tracker.stop();
      await s.op.kill();
      await s.cp.stop();
    }
  }

  const of = (side: string, b: number) => rounds.filter((r) => r.side === side && r.branches === b);
  const agg = (side: string, b: number) => {
    const rs = of(side, b);
    return {
      tps: rs.reduce((a, r) => a + r.txPerSec, 0) / (rs.length || 1),
      p50: rs.reduce((a, r) => a + r.p50, 0) / (rs.length || 1),
      all: mean(rs, (r) => r.per.allWrites),
      status: mean(rs, (r) => r.per.statusPutOk),
      events: mean(rs, (r) => r.per.events),
      other: mean(rs, (r) => r.per.allWrites - r.per.statusPutOk - r.per.events),
      op: mean(rs, (r) => r.cpu.operator),
      apiserver: mean(rs, (r) => r.cpu.apiserver),
      etcd: mean(rs, (r) => r.cpu.etcd),
      n: rs.reduce((a, r) => a + r.n, 0),
    };
  };
  const rows: string[] = [
    '| branches | side | committed tx/s | p50 ms | all writes/tx | status writes/tx | Event writes/tx | other writes/tx (create, finalizer) | CPU ms/tx operator | CPU ms/tx kube-apiserver | CPU ms/tx etcd | tx |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const summary: string[] = [];
  for (const b of BRANCHES) {
    const [a, w] = [agg('baseline', b), agg('working tree', b)];
    for (const [label, x] of [['baseline', a], ['working tree', w]] as const) {
      rows.push(`| ${b} | ${label} | ${f1(x.tps)} | ${f0(x.p50)} | ${f2(x.all)} | ${f2(x.status)} | ${f2(x.events)} | ${f2(x.other)} | ${f2(x.op)} | ${f2(x.apiserver)} | ${f2(x.etcd)} | ${x.n} |`);
    }
    rows.push(
      `| ${b} | **working ÷ baseline** | **${f2(w.tps / a.tps)}×** | ${f2(w.p50 / a.p50)}× | **${f2(w.all / a.all)}×** | ${f2(w.status / a.status)}× | | | **${f2(w.op / a.op)}×** | **${f2(w.apiserver / a.apiserver)}×** | ${f2(w.etcd / a.etcd)}× | |`,
    );
    summary.push(`${b} branches: working tree ÷ baseline = ${f2(w.tps / a.tps)}× tx/s, ${f2(w.all / a.all)}× writes/tx (${f2(a.all)} → ${f2(w.all)}), ${f2(w.apiserver / a.apiserver)}× kube-apiserver CPU/tx (${f1(a.apiserver)} → ${f1(w.apiserver)} ms), ${f2(w.op / a.op)}× operator CPU/tx (${f1(a.op)} → ${f1(w.op)} ms)`);
  }
  const ratio16 = (side: string) => agg(side, 16).tps / agg(side, 4).tps;
  const ceilingRatio = (side: string) => (env.ceiling ? (agg(side, 4).tps * agg(side, 4).status) / env.ceiling : NaN);
  summary.push(`16-branch ÷ 4-branch throughput: baseline ${f2(ratio16('baseline'))}, working tree ${f2(ratio16('working tree'))}`);
  if (env.ceiling) summary.push(`throughput × status writes/tx ÷ ceiling (${f0(env.ceiling)} writes/s), 4 branches: baseline ${f2(ceilingRatio('baseline'))}, working tree ${f2(ceilingRatio('working tree'))}`);
  for (const s of summary) env.say(`A/B: ${s}`);
  const perRound = BRANCHES.map((b) => `${b} branches: ${of('baseline', b).map((r, i) => `${f1(r.txPerSec)}/${f1(of('working tree', b)[i]?.txPerSec ?? NaN)}`).join(', ')}`).join('; ');
  return (
    `### A/B: baseline ${baselineRef} (${base.commit.slice(0, 12)}) against the working tree (${sides[1]!.what})\n\n` +
    `Each side on a control plane of its own (same kube-apiserver and etcd binaries, fsync on, both up throughout, one loaded at a time) with its own CRD and operator (\`${env.operatorArgs.join(' ')}\`, every other flag its own default) on its own namespace${sides.some((s) => s.finalizerPolicy) ? `; finalizer policy from the side's chart: baseline ${sides[0]!.finalizerPolicy ? 'on' : 'none'}, working tree ${sides[1]!.finalizerPolicy ? 'on' : 'none'}` : ''}; CRD: ${sides.map((x) => `${x.label} ${x.specGuard ? "as its chart renders it, with the chart's spec guard" : 'its crds/'}`).join(', ')}. ` +
    `4-branch and 16-branch TCC, instant participants, ${CONCURRENCY} clients, closed loop, ${ROUNDS} alternating rounds per side (A B, B A, …; 2 s warm-up + ${STEP_MS / 1000} s each) after ${WARMUP_ROUNDS} uncounted round(s) per side and size. ` +
    `Writes from apiserver_request_total (successful POST/PUT/PATCH/DELETE of any resource); CPU from /proc, both per transaction, weighted by transactions over the rounds; tx/s is the mean of the rounds.` +
    `${base.notes.length ? ` Note: the baseline's ${base.notes.join('; ')}.` : ''}\n\n${rows.join('\n')}\n\n` +
    `${summary.map((s) => `- ${s}`).join('\n')}\n\nPer round (baseline/working tree tx/s): ${perRound}.`
  );
}

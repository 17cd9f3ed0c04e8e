/**
 * kubetx benchmarks: `npm run bench -- <scenario|all>` or `make bench` (all).
 *
 * Starts the real test control plane with etcd fsync ON, the operator as a
 * separate process (startOperator, --workers 32, one namespace), and in-process
 * gRPC participants (serveParticipant, instant or 5 ms). Every figure is
 * printed and appended, with command, date, versions and machine, to
 * bench/RESULTS.md, whose introduction says what each figure means.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { API_VERSION, type DistributedTransaction, type Mode, type TransactionStatus } from '../src/api/types.js';
import { applyFinalizerPolicy } from '../test/support/chart.js';
import { SHARDED_WATCH_GATE, startControlPlane, freePorts, type ControlPlane } from '../test/support/control-plane.js';
import { installCrds } from '../test/support/crds.js';
import { startOperator, counterValue, type OperatorProcess } from '../test/support/operator.js';
import { repoRoot } from '../test/support/testenv-paths.js';
import { controlPlanePids, cpuDelta, cpuSnapshot, type CpuSnapshot } from './lib/cpu.js';
import { etcdUrl, readStored, seedCopies } from './lib/etcd.js';
import { f0, f1, f2 } from './lib/format.js';
import { Api, diffRequests, managedFieldsBytes, metricValue, newNamespace } from './lib/kube.js';
import { createTargets, statusWriteLoop } from './lib/status-writes.js';
import { abFigure, baselineCheckout } from './ab.js';
import { buildOperator } from './lib/build.js';
import { rulesFigure } from './rules.js';
import { shardingFigure } from './sharding.js';
import { brokerFigure } from './broker.js';
import { measure, perTx, requests, type PerTx } from './lib/per-tx.js';
import { closedLoop, commitProbe, createTx, latencies, openLoop, Tracker, type LoadResult } from './lib/load.js';
import { successPhase, transaction, txPath, type TxOptions } from './lib/manifests.js';
import { startParticipants, type ParticipantSet } from './lib/participants.js';
import type { NaiveParams, NaiveResult } from './naive.js';
import { summarize, summaryMarkdown, type CpuProfile } from './profile-summary.js';

const WORKERS = Number(process.env.KUBETX_BENCH_WORKERS ?? 32);
const SWEEP = (process.env.KUBETX_BENCH_SWEEP ?? '16,32,64').split(',').map(Number);
const CEILING_MS = Number(process.env.KUBETX_BENCH_CEILING_MS ?? 15_000);
const STEP_MS = Number(process.env.KUBETX_BENCH_STEP_MS ?? 8_000);
const WARMUP_MS = 2_000;
const NAIVE_WARMUP_MS = 8_000;
const NAIVE_MS = Number(process.env.KUBETX_BENCH_NAIVE_MS ?? 10_000);
const COMPARE_ROUNDS = 3;
const LATENCY_MS = Number(process.env.KUBETX_BENCH_LATENCY_MS ?? 20_000);
/** The transaction size the `profile` figure profiles (4 = the payment example). */
const PROFILE_BRANCHES = Number(process.env.KUBETX_BENCH_PROFILE_BRANCHES ?? 4);
const SCALE_N = Number(process.env.KUBETX_BENCH_SCALE_N ?? 10_000);
/** How long the scale figure makes transactions for real before seeding the rest (bench/lib/etcd.ts). */
const SCALE_REAL_MS = Number(process.env.KUBETX_BENCH_SCALE_REAL_MS ?? 40_000);

/** `all` must finish within 10 minutes: the scale figure shrinks to fit what is left of this. */
const RUN_BUDGET_MS = Number(process.env.KUBETX_BENCH_BUDGET_MS ?? 560_000);
const runStart = performance.now();

const SCENARIOS = ['ceiling', 'throughput', 'writes', 'latency', 'slow', 'naive', 'saga', 'notify', 'profile', 'scale', 'rules', 'ab', 'sharding', 'broker'] as const;
type Scenario = (typeof SCENARIOS)[number];
/**
 * `ab` compares against a baseline ref (KUBETX_BENCH_BASELINE, `make bench BASELINE=<ref>`); `sharding` (bench/sharding.ts)
 * takes about 6 minutes on its own and needs the API server's ShardedListAndWatch gate; `broker` (bench/broker.ts, about
 * 2 minutes) measures the broker library and the SDK's consumer, not the operator: none of them is part of `all`.
 */
const ALL: Scenario[] = SCENARIOS.filter((s) => s !== 'ab' && s !== 'sharding' && s !== 'broker');
/** Figures that need only the control plane: no operator, participants or probe transaction is started for them alone. */
const WITHOUT_OPERATOR: readonly Scenario[] = ['broker'];
const BASELINE = process.env.KUBETX_BENCH_BASELINE;
/**
 * Every figure but `ab` with another ref's operator (compiled from a worktree, bench/ab.ts), e.g. the
 * scale figure's memory before a change: KUBETX_BENCH_OPERATOR_REF=<ref> npm run bench -- scale.
 * The control plane still has this checkout's CRD.
 */
const OPERATOR_REF = process.env.KUBETX_BENCH_OPERATOR_REF;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number | undefined) => (b === undefined ? 'n/a' : `${(b / 1048576).toFixed(0)} MiB`);

interface Step {
  concurrency: number;
  txPerSec: number;
  statusWritesPerTx: number;
  allWritesPerTx: number;
  p50: number;
  per: PerTx;
  opWrites: number;
  n: number;
  /** CPU ms per transaction: operator, kube-apiserver, etcd, this process (load generator + participants + watch). */
  cpu: CpuSnapshot;
}

interface Ctx {
  cp: ControlPlane;
  api: Api;
  ns: string;
  op: OperatorProcess;
  tracker: Tracker;
  fast: ParticipantSet;
  slow: ParticipantSet;
  profileDir: string;
  pids: { etcd?: number; apiserver?: number };
  /** Markdown for RESULTS.md, section by section. */
  md: string[];
  /** The checkout whose operator runs (this one, or KUBETX_BENCH_OPERATOR_REF's worktree). */
  operatorRoot: string;
  /** The chart's finalizer policy is bound to `ns`: creates come back with the finalizer. */
  finalizerPolicy: boolean;
  /** Figures other figures depend on. */
  ceiling?: { writesPerSec: number; objects: number; statusBytes: number; conflicts: number; errors: number };
  sat?: Step;
  /** Every step of the throughput sweep, by number of clients. */
  steps: Map<number, Step>;
  template?: { status: TransactionStatus; spec: DistributedTransaction['spec'] };
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Runs `body`, returning its result and the API requests per transaction it caused. */
const measured = <T extends LoadResult>(ctx: Ctx, body: () => Promise<T>) => measure(ctx.api, ctx.op, ctx.pids, body);

const cpuText = (c: CpuSnapshot) => `${f1(c.operator)} / ${f1(c.apiserver)} / ${f1(c.etcd)} / ${f1(c.bench)}`;

function txMaker(ctx: Ctx, o: Partial<TxOptions> & { slow?: boolean }) {
  const set = o.slow ? ctx.slow : ctx.fast;
  return (name: string) => transaction(name, ctx.ns, { branches: 4, addresses: set.addresses, ...o });
}

function committedPerSec(r: LoadResult, phase = 'Committed'): number {
  return r.measured.filter((s) => s.phase === phase).length / (r.windowMs / 1000);
}

// ---------------------------------------------------------------- figures

async function probe(ctx: Ctx): Promise<void> {
  const { name } = await commitProbe({ api: ctx.api, tracker: ctx.tracker, make: txMaker(ctx, {}), prefix: 'probe', wantFinalizer: ctx.finalizerPolicy });
  const tx = await ctx.api.json<DistributedTransaction>('GET', txPath(ctx.ns, name));
  ctx.template = { status: tx.status!, spec: tx.spec };
  say(`probe: 4-branch TCC committed; its status is ${JSON.stringify(tx.status).length} bytes of JSON, the whole object ${JSON.stringify(tx).length} (managedFields ${managedFieldsBytes(tx)})`);
  if (process.env.KUBETX_BENCH_DUMP_PROBE) writeFileSync(process.env.KUBETX_BENCH_DUMP_PROBE, JSON.stringify(tx, null, 1));
}

async function ceiling(ctx: Ctx): Promise<void> {
  if (!ctx.template) await probe(ctx);
  const ns = await newNamespace(ctx.api, 'bench-ceiling');
  const n = WORKERS;
  const targets = await createTargets(n, (i) => createTx(ctx.api, transaction(`ceiling-${i}`, ns, { branches: 4, addresses: ctx.fast.addresses }), true));
  const status = ctx.template!.status;
  const cpu0 = cpuSnapshot(ctx.pids);
  const { ok, conflicts, errors, ms } = await statusWriteLoop({
    api: ctx.api,
    collection: txPath(ns),
    apiVersion: API_VERSION,
    namespace: ns,
    targets,
    status,
    durationMs: CEILING_MS,
    tag: 'ceiling write',
  });
  const secs = ms / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(ctx.pids), ok || 1);
  const statusBytes = JSON.stringify({ ...status, message: 'ceiling write 000000' }).length;
  ctx.ceiling = { writesPerSec: ok / secs, objects: n, statusBytes, conflicts, errors };
  say(`ceiling: ${f0(ok / secs)} status writes/s (PUT /status with resourceVersion precondition, ${n} objects, concurrency ${n}, ${secs.toFixed(0)} s, status ${statusBytes} B, ${conflicts} conflicts, ${errors} errors); CPU ms/write: apiserver ${f2(cpu.apiserver)}, etcd ${f2(cpu.etcd)}, client ${f2(cpu.bench)}`);
  ctx.md.push(
    `### Ceiling: raw status writes\n\n${f0(ok / secs)} writes/s: PUT .../status with a resourceVersion precondition, a lean keep-alive HTTPS client, ` +
      `${n} pre-created objects (spec of a 4-branch transaction, status copied from a real committed one: ${statusBytes} B of JSON), ` +
      `one writer per object (concurrency ${n} = the operator's --workers), ${secs.toFixed(0)} s; ${conflicts} conflicts, ${errors} errors. ` +
      `CPU per write: kube-apiserver ${f2(cpu.apiserver)} ms, etcd ${f2(cpu.etcd)} ms, the client ${f2(cpu.bench)} ms.`,
  );
}

async function throughput(ctx: Ctx): Promise<void> {
  const rows: string[] = ['| clients (closed loop) | committed tx/s | p50 ms | p99 ms | status PUTs/tx | 409s/tx | all writes/tx | CPU ms/tx: operator / apiserver / etcd / bench |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  let best: Step | undefined;
  for (const c of SWEEP) {
    const { r, per, opWrites, cpu } = await measured(ctx, () =>
      closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: c, warmupMs: WARMUP_MS, durationMs: STEP_MS, make: txMaker(ctx, {}), prefix: `tp${c}` }),
    );
    const tps = committedPerSec(r);
    const l = latencies(r.measured);
    say(`throughput: ${c} clients → ${f1(tps)} committed tx/s, p50 ${f0(l.p50)} ms, p99 ${f0(l.p99)} ms, ${f2(per.statusPut)} status PUTs/tx (${f2(per.statusConflicts)} 409), ${f2(per.allWrites)} writes/tx in all; CPU ms/tx operator/apiserver/etcd/bench ${cpuText(cpu)}${r.errors ? `, ${r.errors} errors` : ''}`);
    rows.push(`| ${c} | ${f1(tps)} | ${f0(l.p50)} | ${f0(l.p99)} | ${f2(per.statusPut)} | ${f2(per.statusConflicts)} | ${f2(per.allWrites)} | ${cpuText(cpu)} |`);
    const step: Step = { concurrency: c, txPerSec: tps, statusWritesPerTx: per.statusPutOk, allWritesPerTx: per.allWrites, p50: l.p50, per, opWrites, n: r.samples.length, cpu };
    ctx.steps.set(c, step);
    if (!best || tps > best.txPerSec) best = step;
  }
  ctx.sat = best!;
  const ratioLine = ctx.ceiling
    ? `throughput × status writes/tx ÷ ceiling = ${f1(best!.txPerSec)} × ${f2(best!.statusWritesPerTx)} ÷ ${f0(ctx.ceiling.writesPerSec)} = **${f2((best!.txPerSec * best!.statusWritesPerTx) / ctx.ceiling.writesPerSec)}** ` +
      `(counting every write, the create and the Events too: ${f1(best!.txPerSec)} × ${f2(best!.allWritesPerTx)} ÷ ${f0(ctx.ceiling.writesPerSec)} = ${f2((best!.txPerSec * best!.allWritesPerTx) / ctx.ceiling.writesPerSec)})`
    : 'ceiling not measured in this run';
  say(`throughput at saturation: ${f1(best!.txPerSec)} committed 4-branch TCC tx/s (${best!.concurrency} clients); ${ratioLine.replace(/\*\*/g, '')}`);
  ctx.md.push(
    `### Throughput: 4-branch TCC, instant participants\n\nClosed loop (each client creates a transaction and waits, through the watch, for its terminal phase), ` +
      `${WARMUP_MS / 1000} s warm-up then ${STEP_MS / 1000} s per step. Writes per transaction from the API server's apiserver_request_total ` +
      `(divided by all transactions of the step; "all writes" = every successful POST/PUT/PATCH/DELETE of any resource, i.e. the create, the status writes and the Events).\n\n${rows.join('\n')}\n\n` +
      `Saturation: **${f1(best!.txPerSec)} tx/s** at ${best!.concurrency} clients. ${ratioLine}.`,
  );
}

async function writes(ctx: Ctx): Promise<void> {
  const c = ctx.sat?.concurrency ?? 32;
  const rows = ['| branches | committed tx/s | p50 ms | status PUTs/tx (operator\'s own count) | 409s/tx | main-resource requests/tx | Event writes/tx | all writes/tx | CPU ms/tx: operator / apiserver / etcd / bench | tx |', '| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |'];
  for (const b of [1, 4, 16]) {
    let step = b === 4 ? ctx.sat : undefined;
    if (!step) {
      const { r, per, opWrites, cpu } = await measured(ctx, () =>
        closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: c, warmupMs: 1000, durationMs: STEP_MS, make: txMaker(ctx, { branches: b }), prefix: `w${b}` }),
      );
      const l = latencies(r.measured);
      step = { concurrency: c, txPerSec: committedPerSec(r), statusWritesPerTx: per.statusPutOk, allWritesPerTx: per.allWrites, p50: l.p50, per, opWrites, n: r.samples.length, cpu };
    }
    const { per, opWrites } = step;
    const verbs = Object.entries(per.mainByVerb).filter(([, v]) => v > 0.005).map(([k, v]) => `${k} ${f2(v)}`).join(', ');
    say(`writes/tx, ${b} branch(es): ${f2(per.statusPut)} status PUTs/tx (${f2(opWrites)} by the operator's own count, ${f2(per.statusConflicts)} 409), main resource: ${verbs}; events ${f2(per.events)}; all writes ${f2(per.allWrites)}; ${f1(step.txPerSec)} tx/s, p50 ${f0(step.p50)} ms (${step.n} tx${b === 4 ? ', from the throughput step' : ''})`);
    rows.push(`| ${b} | ${f1(step.txPerSec)} | ${f0(step.p50)} | ${f2(per.statusPut)} (${f2(opWrites)}) | ${f2(per.statusConflicts)} | ${verbs} | ${f2(per.events)} | ${f2(per.allWrites)} | ${cpuText(step.cpu)} | ${step.n} |`);
  }
  ctx.md.push(
    `### Writes per transaction (API server metrics)\n\n${c} clients, closed loop, ${STEP_MS / 1000} s each (4 branches: the saturation step above). Per transaction, from apiserver_request_total before/after ` +
      `(main-resource requests: POST is the benchmark's create; a GET would be the operator's live read after a conflict; Events: events.k8s.io writes).\n\n${rows.join('\n')}`,
  );
}

async function latency(ctx: Ctx): Promise<void> {
  if (!ctx.sat) await throughput(ctx);
  // Other jobs' load moves under a shared machine: re-measure saturation right before (5 s at the saturating
  // concurrency) and take the lower of the two, so that "half" is not more than the machine has now.
  const check = await closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: ctx.sat!.concurrency, warmupMs: 1000, durationMs: 5000, make: txMaker(ctx, {}), prefix: 'latchk' });
  const satNow = committedPerSec(check);
  const rate = Math.min(ctx.sat!.txPerSec, satNow) / 2;
  const r = await openLoop({ api: ctx.api, tracker: ctx.tracker, ratePerSec: rate, durationMs: LATENCY_MS, make: txMaker(ctx, {}), prefix: 'lat' });
  const l = latencies(r.samples);
  say(`latency at 50% of saturation (saturation ${f1(ctx.sat!.txPerSec)} tx/s in the sweep, ${f1(satNow)} tx/s re-measured just before; ${f1(rate)} tx/s open loop, ${l.n} tx): p50 ${f0(l.p50)} ms, p90 ${f0(l.p90)} ms, p99 ${f0(l.p99)} ms, max ${f0(l.max)} ms`);
  ctx.md.push(
    `### Latency at 50 % of saturation\n\nSaturation ${f1(ctx.sat!.txPerSec)} tx/s in the sweep, ${f1(satNow)} tx/s re-measured just before (5 s, ${ctx.sat!.concurrency} clients); half the lower one: open loop, ${f1(rate)} tx/s evenly spaced for ${LATENCY_MS / 1000} s (${l.n} transactions), create → terminal phase seen by the watch, ` +
      `timed from each transaction's scheduled arrival: **p50 ${f0(l.p50)} ms, p90 ${f0(l.p90)} ms, p99 ${f0(l.p99)} ms** (max ${f0(l.max)} ms).`,
  );
}

async function slow(ctx: Ctx): Promise<void> {
  const c = ctx.sat?.concurrency ?? 64;
  const { r, per } = await measured(ctx, () =>
    closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: c, warmupMs: WARMUP_MS, durationMs: STEP_MS, make: txMaker(ctx, { slow: true }), prefix: 'slow' }),
  );
  const tps = committedPerSec(r);
  const l = latencies(r.measured);
  say(`5 ms participants: ${f1(tps)} committed 4-branch tx/s at ${c} clients, p50 ${f0(l.p50)} ms, p99 ${f0(l.p99)} ms, ${f2(per.statusPut)} status PUTs/tx`);
  ctx.md.push(`### Participants with a 5 ms service time\n\n4-branch TCC, every call takes 5 ms; ${c} clients: **${f1(tps)} tx/s**, p50 ${f0(l.p50)} ms, p99 ${f0(l.p99)} ms, ${f2(per.statusPut)} status PUTs/tx.`);
}

async function naive(ctx: Ctx): Promise<void> {
  // Same number of clients as the operator has workers, for both strategies, alternating kubetx and naive
  // runs (three rounds each) so that both see the same share of a machine whose load changes under them.
  const c = WORKERS;
  const ns = await newNamespace(ctx.api, 'bench-naive');
  const kRuns: Step[] = [];
  const nRuns: Array<{ tps: number; res: NaiveResult; per: PerTx; cpu: CpuSnapshot }> = [];
  for (let round = 0; round < COMPARE_ROUNDS; round++) {
    const { r, per, opWrites, cpu } = await measured(ctx, () =>
      closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: c, warmupMs: WARMUP_MS, durationMs: NAIVE_MS, make: txMaker(ctx, {}), prefix: `cmp${round}` }),
    );
    kRuns.push({ concurrency: c, txPerSec: committedPerSec(r), statusWritesPerTx: per.statusPutOk, allWritesPerTx: per.allWrites, p50: latencies(r.measured).p50, per, opWrites, n: r.samples.length, cpu });
    const params: NaiveParams = {
      kubeconfig: ctx.cp.kubeconfigPath,
      namespace: ns,
      concurrency: c,
      warmupMs: NAIVE_WARMUP_MS,
      durationMs: NAIVE_MS,
      tx: { branches: 4, addresses: ctx.fast.addresses },
      prefix: `naive${round}`,
    };
    const before = await requests(ctx.api);
    const cpu0 = cpuSnapshot(ctx.pids);
    const res = await new Promise<NaiveResult>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench/naive.ts'), JSON.stringify(params)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as NaiveResult) : reject(new Error(`naive reference exited ${code}`))));
    });
    await sleep(500);
    const nc = res.committed || 1;
    const ncpu = { ...cpuDelta(cpu0, cpuSnapshot(ctx.pids), nc), operator: res.cpuMs / nc };
    const nper = perTx(diffRequests(before, await requests(ctx.api)), nc);
    nRuns.push({ tps: res.measured / (res.windowMs / 1000), res, per: nper, cpu: ncpu });
    say(`compare round ${round + 1}: kubetx ${f1(kRuns[round]!.txPerSec)} tx/s (${f2(per.statusPut)} status PUTs/tx, CPU ms/tx ${cpuText(cpu)}), naive ${f1(nRuns[round]!.tps)} tx/s (${f2(nper.statusPut)} status PUTs/tx, CPU ms/tx ${cpuText(ncpu)})${res.errors ? `, naive errors ${res.errors}` : ''}`);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const wmean = (xs: Array<[number, number]>) => xs.reduce((a, [v, w]) => a + v * w, 0) / xs.reduce((a, [, w]) => a + w, 0);
  const kCpu = (f: keyof CpuSnapshot) => wmean(kRuns.map((k) => [k.cpu[f], k.n]));
  const nCpu = (f: keyof CpuSnapshot) => wmean(nRuns.map((x) => [x.cpu[f], x.res.committed]));
  const k = {
    tps: mean(kRuns.map((x) => x.txPerSec)),
    status: wmean(kRuns.map((x) => [x.statusWritesPerTx, x.n])),
    all: wmean(kRuns.map((x) => [x.allWritesPerTx, x.n])),
    p50: mean(kRuns.map((x) => x.p50)),
    cpu: { operator: kCpu('operator'), apiserver: kCpu('apiserver'), etcd: kCpu('etcd'), bench: kCpu('bench') },
  };
  const nv = {
    tps: mean(nRuns.map((x) => x.tps)),
    status: wmean(nRuns.map((x) => [x.per.statusPutOk, x.res.committed])),
    all: wmean(nRuns.map((x) => [x.per.allWrites, x.res.committed])),
    p50: mean(nRuns.map((x) => x.res.latency.p50)),
    cpu: { operator: nCpu('operator'), apiserver: nCpu('apiserver'), etcd: nCpu('etcd'), bench: nCpu('bench') },
  };
  const cpuTotal = (x: CpuSnapshot) => x.operator + x.apiserver + x.etcd + x.bench;
  say(`naive reference (status after every call): ${f1(nv.tps)} committed 4-branch tx/s at ${c} clients, p50 ${f0(nv.p50)} ms, ${f2(nv.status)} status writes/tx, ${f2(nv.all)} writes/tx in all; CPU ms/tx naive/apiserver/etcd/bench ${cpuText(nv.cpu)}`);
  say(`kubetx vs naive at ${c} clients (${COMPARE_ROUNDS} alternating rounds each): ${f2(k.tps / nv.tps)}× the throughput (${f1(k.tps)} vs ${f1(nv.tps)} tx/s), ${f2(k.status / nv.status)}× the status writes per transaction (${f2(k.status)} vs ${f2(nv.status)}), ${f2(cpuTotal(k.cpu) / cpuTotal(nv.cpu))}× the CPU per transaction (${f0(cpuTotal(k.cpu))} vs ${f0(cpuTotal(nv.cpu))} ms)`);
  ctx.md.push(
    `### Comparison: naive "status after every branch call"\n\nbench/naive.ts, its own process like the operator: for each transaction the same gRPC calls (src/participants callParticipant), ` +
      `one after the other, and a PUT /status (src/controller ApiStatusStore, resourceVersion precondition) after each. Both strategies at ${c} clients, closed loop, 4 branches, instant participants, ` +
      `alternating (kubetx, naive, kubetx, naive, …: ${COMPARE_ROUNDS} rounds, ${NAIVE_MS / 1000} s each after a warm-up) so that both see the same machine; figures are the means of the rounds. ` +
      `On this shared machine the rates move with other jobs' load; CPU per transaction is the steadier comparison. ` +
      `The naive loop records no Events (kubetx records two per transaction), which favours it in "all writes". CPU of the engine process = the operator, or the naive loop's process.\n\n` +
      `| strategy | committed tx/s | status writes/tx | all writes/tx | p50 ms | CPU ms/tx: engine process / apiserver / etcd / bench | CPU ms/tx in all |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n` +
      `| kubetx (batched: decision + outcome) | ${f1(k.tps)} | ${f2(k.status)} | ${f2(k.all)} | ${f0(k.p50)} | ${cpuText(k.cpu)} | ${f0(cpuTotal(k.cpu))} |\n` +
      `| naive: status after every call | ${f1(nv.tps)} | ${f2(nv.status)} | ${f2(nv.all)} | ${f0(nv.p50)} | ${cpuText(nv.cpu)} | ${f0(cpuTotal(nv.cpu))} |\n` +
      `| **kubetx ÷ naive** | **${f2(k.tps / nv.tps)}×** | **${f2(k.status / nv.status)}×** | ${f2(k.all / nv.all)}× | ${f2(k.p50 / nv.p50)}× | apiserver ${f2(k.cpu.apiserver / nv.cpu.apiserver)}×, etcd ${f2(k.cpu.etcd / nv.cpu.etcd)}× | ${f2(cpuTotal(k.cpu) / cpuTotal(nv.cpu))}× |\n\n` +
      `Per round: ${kRuns.map((x, i) => `kubetx ${f1(x.txPerSec)} / naive ${f1(nRuns[i]!.tps)} tx/s`).join('; ')}.`,
  );
}

async function modeFigure(ctx: Ctx, mode: Mode, label: string): Promise<void> {
  const make = txMaker(ctx, { mode, linear: mode === 'Saga' });
  const want = successPhase[mode];
  const name = `${mode.toLowerCase()}-probe`;
  const done = ctx.tracker.wait(name);
  try {
    await createTx(ctx.api, make(name));
  } catch (err) {
    say(`${label}: not supported yet (create refused: ${(err as Error).message.slice(0, 200)})`);
    ctx.md.push(`### ${label}\n\nNot supported yet: the API server refused the transaction (${(err as Error).message.slice(0, 200)}).`);
    return;
  }
  const r = await Promise.race([done, sleep(5000).then(() => undefined)]);
  if (r?.phase !== want) {
    const tx = await ctx.api.json<DistributedTransaction>('GET', txPath(ctx.ns, name)).catch(() => undefined);
    const why = `phase ${tx?.status?.phase ?? '(none)'} after 5 s${tx?.status?.message ? `: ${tx.status.message.slice(0, 160)}` : ''}`;
    say(`${label}: not supported yet (${why})`);
    ctx.md.push(`### ${label}\n\nNot supported yet in this tree: the probe transaction did not reach ${want} (${why}).`);
    return;
  }
  const c = ctx.sat?.concurrency ?? 64;
  const { r: res, per } = await measured(ctx, () =>
    closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: c, warmupMs: WARMUP_MS, durationMs: STEP_MS, make, prefix: mode.toLowerCase() }),
  );
  const tps = committedPerSec(res, want);
  const l = latencies(res.measured);
  say(`${label}: ${f1(tps)} tx/s reaching ${want} at ${c} clients, p50 ${f0(l.p50)} ms, p99 ${f0(l.p99)} ms, ${f2(per.statusPut)} status PUTs/tx (${f2(per.statusConflicts)} 409), ${f2(per.allWrites)} writes/tx in all`);
  ctx.md.push(`### ${label}\n\n${c} clients, closed loop, ${STEP_MS / 1000} s: **${f1(tps)} tx/s** reaching ${want}, p50 ${f0(l.p50)} ms, p99 ${f0(l.p99)} ms, ${f2(per.statusPut)} status PUTs/tx (${f2(per.statusConflicts)} of them 409), ${f2(per.allWrites)} writes/tx in all.`);
}

async function profile(ctx: Ctx): Promise<void> {
  const c = ctx.sat?.concurrency ?? 64;
  const pid = ctx.op.child.pid!;
  const before = new Set(existsSync(ctx.profileDir) ? readdirSync(ctx.profileDir) : []);
  const loop = closedLoop({ api: ctx.api, tracker: ctx.tracker, concurrency: c, warmupMs: WARMUP_MS, durationMs: STEP_MS, make: txMaker(ctx, { branches: PROFILE_BRANCHES }), prefix: 'prof' });
  await sleep(WARMUP_MS);
  process.kill(pid, 'SIGUSR2');
  await sleep(STEP_MS);
  process.kill(pid, 'SIGUSR2');
  const r = await loop;
  let file: string | undefined;
  for (let i = 0; i < 100 && !file; i++) {
    file = readdirSync(ctx.profileDir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
    if (!file) await sleep(100);
  }
  if (!file) throw new Error('no .cpuprofile written by the operator');
  const path = join(ctx.profileDir, file);
  const s = summarize(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, 25);
  const tps = committedPerSec(r);
  say(`profile: ${f1(tps)} tx/s while profiling; operator main thread busy ${((100 * s.busyMs) / s.totalMs).toFixed(0)} %, GC ${((100 * s.gcMs) / s.busyMs).toFixed(1)} % of busy; ${path}`);
  for (const row of s.byPackage.slice(0, 8)) say(`  ${row.pct.toFixed(1).padStart(5)} %  ${row.name}`);
  say('  top self time:');
  for (const row of s.topSelf.slice(0, 12)) say(`  ${row.pct.toFixed(1).padStart(5)} %  ${row.name}`);
  ctx.md.push(
    `### Operator CPU profile at saturation\n\n${PROFILE_BRANCHES}-branch TCC, ${c} clients, closed loop, V8 CPU profiler (500 µs sampling) over the ${STEP_MS / 1000} s window (${f1(tps)} tx/s while profiling). ` +
      `Profile: \`${path.replace(repoRoot + '/', '')}\` (not committed).\n\n${summaryMarkdown(s)}`,
  );
}

async function scale(ctx: Ctx): Promise<void> {
  // A fresh operator on a namespace of its own, the main one stopped: its memory is the scale figure's alone.
  await ctx.op.kill();
  const ns = await newNamespace(ctx.api, 'bench-scale');
  const tracker = new Tracker(ctx.api, ns);
  await tracker.ready();
  const launch = () =>
    startOperator({ kubeconfig: ctx.cp.kubeconfigPath, namespaces: [ns], args: operatorArgs(), env: operatorEnv(ctx.profileDir), built: true, root: ctx.operatorRoot });
  let op = await launch();
  /** Memory from the operator's own /metrics (prom-client default metrics), then again right after a full GC. */
  const mem = async (o: OperatorProcess) => {
    const read = async () => {
      const m = await o.metrics();
      const v = (n: string) => metricValue(m, n);
      return {
        rss: v('kubetx_process_process_resident_memory_bytes') ?? v('kubetx_process_resident_memory_bytes'),
        heapUsed: v('kubetx_process_nodejs_heap_size_used_bytes'),
        heapTotal: v('kubetx_process_nodejs_heap_size_total_bytes'),
        external: v('kubetx_process_nodejs_external_memory_bytes'),
      };
    };
    const asIs = await read();
    process.kill(o.child.pid!, 'SIGWINCH');
    await sleep(1000);
    const afterGc = await read();
    return { ...asIs, heapLive: afterGc.heapUsed, rssAfterGc: afterGc.rss };
  };
  /** k new transactions one after the other: create → Committed. */
  const fresh = async (k: number, prefix: string) => {
    const samples = [];
    for (let i = 0; i < k; i++) {
      const name = `${prefix}-${i}`;
      const done = tracker.wait(name);
      const start = performance.now();
      await createTx(ctx.api, transaction(name, ns, { branches: 4, addresses: ctx.fast.addresses }));
      const r = await Promise.race([done, sleep(60_000).then(() => undefined)]);
      tracker.forget(name);
      if (r) samples.push({ name, start, end: r.at, phase: r.phase });
    }
    return latencies(samples);
  };
  /** Waits until the operator's queue is empty and it has reconciled at least `atLeast` times; returns ms waited. */
  const drained = async (o: OperatorProcess, atLeast: number, timeoutMs: number) => {
    const t = performance.now();
    while (performance.now() - t < timeoutMs) {
      const m = await o.metrics();
      if ((metricValue(m, 'kubetx_workqueue_depth') ?? 1) === 0 && counterValue(m, 'kubetx_reconcile_total') >= atLeast) return performance.now() - t;
      await sleep(200);
    }
    return NaN;
  };
  await sleep(2000);
  const mem0 = await mem(op);
  const lat0 = await fresh(10, 'empty');
  say(`scale: operator with an empty namespace: RSS ${mib(mem0.rss)}, heap used ${mib(mem0.heapUsed)} (${mib(mem0.heapLive)} after a full GC); a new transaction: p50 ${f0(lat0.p50)} ms`);

  // 1. For real: 32 clients, each creates a transaction and waits until the operator has handled it, alternating
  //    one that commits and one that stays Trying (its 4th branch is a closed port: UNAVAILABLE at once,
  //    retried every 10 minutes within a 1 h timeout).
  const [deadPort] = await freePorts(1);
  const pendingOpts: TxOptions = { branches: 4, addresses: ctx.fast.addresses, lastAddress: `127.0.0.1:${deadPort}`, timeout: '1h', retry: { initialInterval: '10m', maxInterval: '10m', multiplier: 2, maxAttempts: 0 } };
  const isPending = (tx: DistributedTransaction) => tx.status?.phase === 'Trying' && (tx.status.branches?.[3]?.attempts ?? 0) >= 1;
  const handledPending = new Map<string, () => void>();
  tracker.listener = (type, tx) => {
    if (type !== 'DELETED' && isPending(tx)) handledPending.get(tx.metadata.name)?.();
  };
  const realUntil = performance.now() + Math.min(SCALE_REAL_MS, Math.max(10_000, runStart + RUN_BUDGET_MS - 150_000 - performance.now()));
  let seq = 0;
  let realDone = 0;
  let realPending = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < realUntil && seq < SCALE_N - 10) {
        const i = seq++;
        const half = Math.floor(i / 2);
        if (i % 2 === 0) {
          const name = `done-${half}`;
          const d = tracker.wait(name);
          await createTx(ctx.api, transaction(name, ns, { branches: 4, addresses: ctx.fast.addresses }));
          if ((await Promise.race([d, sleep(60_000).then(() => undefined)]))?.phase === 'Committed') realDone++;
          tracker.forget(name);
        } else {
          const name = `hang-${half}`;
          const d = new Promise<boolean>((r) => handledPending.set(name, () => r(true)));
          await createTx(ctx.api, transaction(name, ns, pendingOpts));
          if (await Promise.race([d, sleep(60_000).then(() => false)])) realPending++;
          handledPending.delete(name);
        }
      }
    }),
  );
  tracker.listener = undefined;
  const realSecs = (performance.now() - t0) / 1000;
  say(`scale: ${realDone} committed + ${realPending} left Trying, made for real in ${realSecs.toFixed(0)} s (${f1((realDone + realPending) / realSecs)}/s, 32 clients)`);

  // 2. The rest: copies of the last real committed and pending objects, written to etcd directly (bench/lib/etcd.ts).
  const seedCount = Math.max(0, SCALE_N - 10 - realDone - realPending);
  const etcd = etcdUrl(ctx.pids.apiserver!);
  const doneTemplate = await readStored(etcd, ns, 'done-0');
  const hangTemplate = await readStored(etcd, ns, 'hang-0');
  if (doneTemplate.status?.phase !== 'Committed' || !isPending(hangTemplate as DistributedTransaction)) {
    throw new Error(`scale: templates not in the expected phases (done-0 ${doneTemplate.status?.phase}, hang-0 ${hangTemplate.status?.phase})`);
  }
  const before = counterValue(await op.metrics(), 'kubetx_reconcile_total');
  const writesBefore = counterValue(await op.metrics(), 'kubetx_status_writes_total');
  const s0 = performance.now();
  const doneNames = Array.from({ length: Math.ceil(seedCount / 2) }, (_, i) => `seed-done-${i}`);
  const hangNames = Array.from({ length: Math.floor(seedCount / 2) }, (_, i) => `seed-hang-${i}`);
  await seedCopies(etcd, ns, doneTemplate, doneNames);
  await seedCopies(etcd, ns, hangTemplate, hangNames);
  const seedSecs = (performance.now() - s0) / 1000;
  const seedDrainMs = await drained(op, before + seedCount, Math.max(20_000, runStart + RUN_BUDGET_MS - 70_000 - performance.now()));
  const seedWrites = counterValue(await op.metrics(), 'kubetx_status_writes_total') - writesBefore;
  const total = 10 + realDone + realPending + seedCount;
  say(`scale: ${seedCount} more (copies of a real committed / pending one) written to etcd in ${f1(seedSecs)} s; the operator saw and reconciled them all ${f1((performance.now() - s0) / 1000)} s after the first (${seedWrites} status writes); ${total} live transactions${Number.isNaN(seedDrainMs) ? ' — NOT all reconciled within the time budget' : ''}`);
  await sleep(3000);
  const mem1 = await mem(op);
  const lat1 = await fresh(20, 'new');
  say(`scale: operator with ${total} live transactions: RSS ${mib(mem1.rss)}, heap used ${mib(mem1.heapUsed)} (${mib(mem1.heapLive)} after a full GC; heap total ${mib(mem1.heapTotal)}), external ${mib(mem1.external)}; a new transaction: p50 ${f0(lat1.p50)} ms, p90 ${f0(lat1.p90)} ms, max ${f0(lat1.max)} ms`);

  // 3. A restart with all of them there: list, sync, reconcile each once.
  await op.kill();
  const r0 = performance.now();
  op = await launch();
  const syncedMs = performance.now() - r0;
  const restartDrainMs = await drained(op, total + 20, 60_000);
  const drainedMs = restartDrainMs + syncedMs;
  const m2 = await op.metrics();
  const mem2 = await mem(op);
  const writesOnRestart = counterValue(m2, 'kubetx_status_writes_total');
  say(`scale: restart with ${total + 20}: ready (listed + synced) in ${f1(syncedMs / 1000)} s, every one reconciled ${f1(drainedMs / 1000)} s after start, ${writesOnRestart} status writes; RSS ${mib(mem2.rss)}, heap used ${mib(mem2.heapUsed)} (${mib(mem2.heapLive)} after a full GC)`);
  tracker.stop();
  await op.kill();
  const perTxKiB = (m: number | undefined, n: number) => f1(((m ?? NaN) - (mem0.heapLive ?? NaN)) / 1024 / n);
  ctx.md.push(
    `### Scale: ${total} live transactions\n\n` +
      (total < SCALE_N ? `Scaled down from ${SCALE_N} to the ${total} that fit the time budget. ` : '') +
      `A fresh operator on its own namespace (the main one stopped). ${realDone + realPending} transactions made for real in ${realSecs.toFixed(0)} s by 32 clients, each waiting for the operator to handle its transaction ` +
      `(${realDone} Committed; ${realPending} left Trying: their 4th branch is a closed port, retried every 10 min within a 1 h timeout). ` +
      `The other ${seedCount} are copies of a real committed one and of a real pending one with a new name and uid, written straight to etcd ` +
      `(bench/lib/etcd.ts: through the API server this machine creates ~100 objects/s and the operator handles 10–30 transactions/s, so 10,000 real ones do not fit in 10 minutes); ` +
      `the operator saw them through its watch and reconciled each once (${seedWrites} status writes). Half of all of them are finished, half pending.\n\n` +
      `| | empty namespace | ${total} live | after a restart with ${total + 20} |\n| --- | ---: | ---: | ---: |\n` +
      `| RSS | ${mib(mem0.rss)} | ${mib(mem1.rss)} | ${mib(mem2.rss)} |\n` +
      `| heap used | ${mib(mem0.heapUsed)} | ${mib(mem1.heapUsed)} | ${mib(mem2.heapUsed)} |\n` +
      `| heap used right after a full GC (live) | ${mib(mem0.heapLive)} | ${mib(mem1.heapLive)} | ${mib(mem2.heapLive)} |\n` +
      `| live heap per transaction | | ${perTxKiB(mem1.heapLive, total)} KiB | ${perTxKiB(mem2.heapLive, total + 20)} KiB |\n` +
      `| new transaction, create → Committed | p50 ${f0(lat0.p50)} ms | p50 ${f0(lat1.p50)} ms, p90 ${f0(lat1.p90)}, max ${f0(lat1.max)} (${lat1.n} tx) | |\n\n` +
      `Restart with ${total + 20} present: ready (list + cache sync) in ${f1(syncedMs / 1000)} s; every one reconciled once ${f1(drainedMs / 1000)} s after start; ${writesOnRestart} status writes.`,
  );
}

async function rules(ctx: Ctx): Promise<void> {
  const committedStatus = async (branches: number) => {
    const { name } = await commitProbe({ api: ctx.api, tracker: ctx.tracker, make: txMaker(ctx, { branches }), prefix: `rules-probe-${branches}`, wantFinalizer: false, timeoutMs: 60_000 });
    return (await ctx.api.json<DistributedTransaction>('GET', txPath(ctx.ns, name))).status!;
  };
  ctx.md.push(await rulesFigure({ api: ctx.api, controlPlane: ctx.pids, addresses: ctx.fast.addresses, committedStatus, say }));
}

async function sharding(ctx: Ctx, gate: boolean): Promise<void> {
  ctx.md.push(
    await shardingFigure({
      api: ctx.api,
      kubeconfig: ctx.cp.kubeconfigPath,
      controlPlane: ctx.pids,
      gate,
      addresses: ctx.fast.addresses,
      operatorArgs: operatorArgs(),
      operatorEnv: operatorEnv(ctx.profileDir),
      root: ctx.operatorRoot,
      say,
    }),
  );
}

async function ab(ctx: Ctx): Promise<void> {
  if (!BASELINE) throw new Error('the ab scenario needs a baseline: KUBETX_BENCH_BASELINE=<git ref> (make bench BASELINE=<ref>)');
  ctx.md.push(
    await abFigure(
      {
        addresses: ctx.fast.addresses,
        operatorArgs: operatorArgs(),
        operatorEnv: operatorEnv(ctx.profileDir),
        say,
        ceiling: ctx.ceiling?.writesPerSec,
      },
      BASELINE,
    ),
  );
}

// ---------------------------------------------------------------- run

/** The benchmark's preload (bench/lib/cpu-profile.cjs): CPU profile on SIGUSR2, full GC on SIGWINCH. */
function operatorEnv(profileDir: string): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${join(repoRoot, 'bench/lib/cpu-profile.cjs')}`.trim(), KUBETX_BENCH_PROFILE_DIR: profileDir };
}

function operatorArgs(): string[] {
  // Resync every hour, not 5 min: a periodic re-list of thousands of objects would land inside some measurement window.
  return ['--workers', String(WORKERS), '--resync-period', '1h'];
}

function machine(cp?: ControlPlane) {
  const cpus = os.cpus();
  let etcd = 'n/a';
  try {
    etcd = /etcd Version: (\S+)/.exec(execFileSync(join(cp!.binDir, 'etcd'), ['--version'], { encoding: 'utf8' }))?.[1] ?? 'n/a';
  } catch {
    /* no binary */
  }
  return {
    node: process.version,
    apiserver: cp?.version ?? 'n/a',
    etcd,
    cpus: `${cpus.length} × ${cpus[0]?.model ?? '?'}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB (${(os.freemem() / 2 ** 30).toFixed(1)} free)`,
    uptime: execFileSync('uptime', { encoding: 'utf8' }).trim(),
  };
}

/** Participants, the namespace and its watch, the operator, and the probe transaction: what every figure but `broker` uses. */
async function operatorContext(cp: ControlPlane, api: Api, md: string[], stopAll: Array<() => Promise<void>>): Promise<Ctx> {
  const fast = await startParticipants(4);
  const slowSet = await startParticipants(4, 5);
  stopAll.push(() => fast.stop(), () => slowSet.stop());
  const ns = await newNamespace(api, 'bench');
  const tracker = new Tracker(api, ns);
  await tracker.ready();
  stopAll.push(async () => tracker.stop());
  // As the chart installs it by default (Kubernetes >= 1.36): the finalizer comes with the create.
  const finalizerPolicy = applyFinalizerPolicy(cp.kubeconfigPath, ns, { release: 'bench' }).length > 0;
  const profileDir = join(repoRoot, '.tmp', 'bench-profiles');
  mkdirSync(profileDir, { recursive: true });
  const operatorRoot = OPERATOR_REF ? baselineCheckout(OPERATOR_REF).root : repoRoot;
  const op = await startOperator({
    built: true,
    root: operatorRoot,
    kubeconfig: cp.kubeconfigPath,
    namespaces: [ns],
    args: operatorArgs(),
    env: operatorEnv(profileDir),
  });
  stopAll.push(() => op.kill());
  const ctx: Ctx = { operatorRoot, finalizerPolicy, cp, api, ns, op, tracker, fast, slow: slowSet, profileDir, pids: controlPlanePids(cp.dir), md, steps: new Map() };
  await probe(ctx);
  return ctx;
}

async function main(): Promise<void> {
  const arg = process.argv[2] ?? 'all';
  const chosen: Scenario[] = arg === 'all' ? ALL : arg.split(',').map((s) => {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      process.stderr.write(`usage: npm run bench -- <${SCENARIOS.join('|')}|all> (comma-separated for several)\n`);
      process.exit(2);
    }
    return s as Scenario;
  });
  const started = Date.now();
  const loadBefore = execFileSync('uptime', { encoding: 'utf8' }).trim();
  say(`kubetx bench: ${chosen.join(', ')}; ${loadBefore}`);

  const withOperator = chosen.some((s) => !WITHOUT_OPERATOR.includes(s));
  if (withOperator) buildOperator(repoRoot);
  // The sharding figure's server-side filter needs the gate; the other figures run as before without it.
  const gate = chosen.includes('sharding');
  const extraApiArgs = (process.env.KUBETX_BENCH_APISERVER_ARGS ?? '').split(' ').filter(Boolean);
  const cp = await startControlPlane({ fsync: true, apiServerArgs: [...(gate ? [SHARDED_WATCH_GATE] : []), ...extraApiArgs] });
  const stopAll: Array<() => Promise<void>> = [() => cp.stop()];
  const cleanup = async () => {
    for (const s of stopAll.reverse()) await s().catch(() => undefined);
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    await installCrds(cp.kubeconfigPath);
    const api = await Api.fromKubeconfig(cp.kubeconfigPath);
    const m = machine(cp);
    say(`control plane up (kube-apiserver ${m.apiserver}${gate ? ` ${SHARDED_WATCH_GATE}` : ''}, etcd ${m.etcd}, fsync on) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const md: string[] = [];
    const ctx = withOperator ? await operatorContext(cp, api, md, stopAll) : undefined;

    for (const s of chosen) {
      const t = Date.now();
      if (s === 'broker') md.push(await brokerFigure({ api, kubeconfig: cp.kubeconfigPath, say }));
      else if (!ctx) throw new Error(`${s} needs the operator`); // withOperator is true whenever such a figure is chosen
      else if (s === 'ceiling') await ceiling(ctx);
      else if (s === 'throughput') await throughput(ctx);
      else if (s === 'writes') await writes(ctx);
      else if (s === 'latency') await latency(ctx);
      else if (s === 'slow') await slow(ctx);
      else if (s === 'naive') await naive(ctx);
      else if (s === 'saga') await modeFigure(ctx, 'Saga', 'Saga, 4 branches, linear');
      else if (s === 'notify') await modeFigure(ctx, 'Notify', 'Notify, 4 branches');
      else if (s === 'profile') await profile(ctx);
      else if (s === 'scale') await scale(ctx);
      else if (s === 'rules') await rules(ctx);
      else if (s === 'ab') await ab(ctx);
      else if (s === 'sharding') await sharding(ctx, gate);
      process.stderr.write(`[bench] ${s} took ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
    }

    const totalSecs = (Date.now() - started) / 1000;
    const loadAfter = execFileSync('uptime', { encoding: 'utf8' }).trim();
    say(`done in ${totalSecs.toFixed(0)} s; ${loadAfter}`);
    // Every KUBETX_BENCH_* setting of this run goes into the command, so that the entry says how to repeat it.
    const settings = Object.entries(process.env)
      .filter(([k, v]) => k.startsWith('KUBETX_BENCH_') && v !== undefined && (k !== 'KUBETX_BENCH_BASELINE' || chosen.includes('ab')))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${/^[\w.,:/=-]*$/.test(v!) ? v : `'${v!.replace(/'/g, "'\\''")}'`} `)
      .join('');
    const cmd = arg === 'all' && !settings ? '`make bench` (= `npx tsx bench/run.ts all`)' : `\`${settings}npm run bench -- ${arg}\``;
    const header = [
      `## ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}: ${cmd}`,
      '',
      `- versions: node ${m.node}, kube-apiserver ${m.apiserver}${gate ? ` (\`${SHARDED_WATCH_GATE}\`)` : ''}, etcd ${m.etcd} (fsync on), kubetx ${JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version as string} (${OPERATOR_REF ? `operator of ${OPERATOR_REF}, compiled from a worktree; CRD and benchmark of the working tree` : 'working tree'})`,
      `- machine: ${m.cpus}, ${m.memory}`,
      `- load before: \`${loadBefore}\``,
      `- load after: \`${loadAfter}\``,
      ...(withOperator
        ? [`- operator: separate process, compiled (\`node dist/src/main.js\`, as the image runs it), \`--workers ${WORKERS} --resync-period 1h\`, log level info; participants: 4 gRPC servers (serveParticipant) in the benchmark process, answering at once (and 4 with a 5 ms service time)`]
        : ['- no operator: the figure runs the broker library and the SDK consumer against the control plane, nats-server and redis-server']),
      `- the whole run took ${totalSecs.toFixed(0)} s`,
      '',
    ].join('\n');
    const section = `${header}\n${md.join('\n\n')}\n\n`;
    appendFileSync(join(repoRoot, 'bench/RESULTS.md'), section);
    say('appended to bench/RESULTS.md');
  } finally {
    await cleanup();
  }
}


main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

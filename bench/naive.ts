/**
 * The naive reference strategy, for comparison only: "write status after
 * every single branch call". For each transaction it makes the same gRPC
 * calls as kubetx (callParticipant from src/participants, the same channel
 * pool) one after the other, and after each call PUTs the status subresource
 * through the same code path as the operator (ApiStatusStore: client-node,
 * resourceVersion precondition). A 4-branch TCC commit therefore costs
 * 4 Try + 4 Confirm = 8 status writes, where kubetx writes 2.
 *
 * Runs as its own process, like the operator, so it competes for the same
 * 2 cores on equal terms:
 *   node --import tsx bench/naive.ts '{"kubeconfig":..., "namespace":..., ...}'
 * It prints one JSON line with its results on stdout.
 */
import * as k8s from '@kubernetes/client-node';
import type { BranchStatus, DistributedTransaction, TransactionStatus } from '../src/api/types.js';
import { ApiStatusStore } from '../src/controller/status-writer.js';
import { parseDuration } from '../src/engine/index.js';
import { callParticipant, type CallerDeps } from '../src/participants/caller.js';
import { ChannelPool } from '../src/participants/pool.js';
import { Api } from './lib/kube.js';
import { createTx, latencies, type Sample } from './lib/load.js';
import { transaction, type TxOptions } from './lib/manifests.js';

export interface NaiveParams {
  kubeconfig: string;
  namespace: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  tx: TxOptions;
  prefix: string;
}

export interface NaiveResult {
  created: number;
  committed: number;
  measured: number;
  windowMs: number;
  statusWrites: number;
  conflicts: number;
  errors: number;
  latency: ReturnType<typeof latencies>;
  /** CPU ms this process used for the run (after start-up). */
  cpuMs: number;
}

async function main(p: NaiveParams): Promise<NaiveResult> {
  const cpu0 = process.cpuUsage();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(p.kubeconfig);
  const api = await Api.fromKubeconfig(p.kubeconfig);
  let statusWrites = 0;
  let conflicts = 0;
  const store = new ApiStatusStore(kc, (r) => (r === 'ok' ? statusWrites++ : r === 'conflict' ? conflicts++ : undefined));
  const pool = new ChannelPool();
  const caller: CallerDeps = {
    pool,
    policy: { allowCrossNamespace: false, allowRawAddresses: true, clusterDomainSuffix: 'svc.cluster.local', serviceOverrides: new Map() },
    now: () => Date.now(),
    defaultCallTimeoutMs: 5000,
    parseDuration,
  };

  const iso = () => new Date().toISOString();
  const write = async (tx: DistributedTransaction, status: TransactionStatus): Promise<DistributedTransaction> => {
    const r = await store.writeStatus(tx, status);
    if (r.kind !== 'ok') throw new Error(`naive: status write ${r.kind} for ${tx.metadata.name}`);
    return r.tx;
  };

  /** One transaction, the naive way: each call, then its own status write. */
  const run = async (name: string): Promise<string> => {
    const manifest = transaction(name, p.namespace, p.tx);
    // The create's response carries uid and resourceVersion: the first status write's precondition.
    let tx = (await createTx(api, manifest, true))!;
    const n = tx.spec.branches.length;
    const startTime = iso();
    const branches: BranchStatus[] = tx.spec.branches.map((b) => ({ name: b.name, state: 'Pending', attempts: 0 }));
    const status = (): TransactionStatus => ({
      observedGeneration: tx.metadata.generation,
      startTime,
      branches: branches.map((b) => ({ ...b })),
      progress: `${branches.filter((b) => b.state === 'Confirmed').length}/${n}`,
    });
    for (let i = 0; i < n; i++) {
      const b = tx.spec.branches[i]!;
      const o = await callParticipant(caller, tx, { branch: b.name, method: 'Try', attempt: 1 });
      if (o.kind !== 'ok') throw new Error(`naive: Try ${b.name}: ${o.kind} ${o.message ?? ''}`);
      branches[i] = { name: b.name, state: 'Prepared', attempts: 1, lastAttemptTime: iso(), ...(o.data ? { result: o.data } : {}) };
      const last = i === n - 1;
      tx = await write(tx, {
        ...status(),
        phase: last ? 'Confirming' : 'Trying',
        ...(last ? { decision: 'Confirm', decisionTime: iso() } : {}),
        conditions: [{ type: 'Succeeded', status: 'Unknown', reason: last ? 'Confirming' : 'Trying', message: '', lastTransitionTime: startTime, observedGeneration: tx.metadata.generation }],
      });
    }
    const decisionTime = tx.status?.decisionTime;
    for (let i = 0; i < n; i++) {
      const b = tx.spec.branches[i]!;
      const o = await callParticipant(caller, tx, { branch: b.name, method: 'Confirm', attempt: 1, result: branches[i]!.result });
      if (o.kind !== 'ok') throw new Error(`naive: Confirm ${b.name}: ${o.kind} ${o.message ?? ''}`);
      branches[i] = { ...branches[i]!, state: 'Confirmed', attempts: 1, lastAttemptTime: iso() };
      const last = i === n - 1;
      tx = await write(tx, {
        ...status(),
        phase: last ? 'Committed' : 'Confirming',
        decision: 'Confirm',
        decisionTime,
        ...(last ? { completionTime: iso(), message: `all ${n} branches confirmed` } : {}),
        conditions: [{ type: 'Succeeded', status: last ? 'True' : 'Unknown', reason: last ? 'Committed' : 'Confirming', message: '', lastTransitionTime: iso(), observedGeneration: tx.metadata.generation }],
      });
    }
    return tx.status?.phase ?? '';
  };

  const samples: Sample[] = [];
  const t0 = performance.now();
  const from = t0 + p.warmupMs;
  const stopAt = from + p.durationMs;
  let seq = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: p.concurrency }, async () => {
      while (performance.now() < stopAt) {
        const name = `${p.prefix}-${seq++}`;
        const start = performance.now();
        try {
          const phase = await run(name);
          samples.push({ name, start, end: performance.now(), phase });
        } catch (err) {
          if (errors++ < 3) process.stderr.write(`${(err as Error).message}\n`);
        }
      }
    }),
  );
  pool.close();
  const measured = samples.filter((s) => s.end >= from && s.end <= stopAt);
  return {
    created: seq,
    committed: samples.filter((s) => s.phase === 'Committed').length,
    measured: measured.filter((s) => s.phase === 'Committed').length,
    windowMs: p.durationMs,
    statusWrites,
    conflicts,
    errors,
    latency: latencies(measured),
    cpuMs: (() => {
      const u = process.cpuUsage(cpu0);
      return (u.user + u.system) / 1000;
    })(),
  };
}

const arg = process.argv[2];
if (arg) {
  main(JSON.parse(arg) as NaiveParams).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`naive: ${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}

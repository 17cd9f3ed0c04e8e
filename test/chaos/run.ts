/**
 * The chaos suite, long version (`make chaos`): its own control plane, then
 *   1. payments, TCC and Saga mixed (4 branches, the payment example's
 *      participants on SQLite), under operator SIGKILLs, participant
 *      errors/hangs/restarts, kube-apiserver and etcd restarts;
 *   2. the same with two replicas and leader election, the leader killed repeatedly;
 *   3. two replicas WITHOUT leader election racing on the same objects;
 *   4. misbehaving participants next to well-behaved transactions;
 *   5. a hostile tenant (hanging participants, invented status codes,
 *      annotation spam, deletes) next to another tenant's payments;
 *   6. three active-active replicas with --shards 16 (the server filter: the
 *      control plane runs with the ShardedListAndWatch gate), random replicas
 *      SIGKILLed repeatedly, next to the participant faults of 1.
 * Exits 1 when an invariant is violated.
 *
 *   npx tsx test/chaos/run.ts [--long] [--transactions N] [--kills N] [--only NAME,...]
 *
 * --only runs some scenarios: single, leader-election, racing, isolation, hostile, sharded (default: all).
 */
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { SHARDED_WATCH_GATE, startControlPlane } from '../support/control-plane.js';
import { installCrds } from '../support/crds.js';
import { formatResult, runIsolation, runPaymentChaos, runRacingReplicas, type ChaosContext, type ScenarioResult } from './driver.js';
import { runHostileTenant } from './hostile.js';

const { values } = parseArgs({
  options: {
    long: { type: 'boolean' },
    transactions: { type: 'string' },
    kills: { type: 'string' },
    only: { type: 'string' },
  },
});
const long = values.long ?? false;
const n = Number(values.transactions ?? (long ? 200 : 40));
const kills = Number(values.kills ?? (long ? 24 : 4));
const SCENARIOS = ['single', 'leader-election', 'racing', 'isolation', 'hostile', 'sharded'] as const;
const only = new Set(values.only ? values.only.split(',') : SCENARIOS);
for (const s of only) {
  if (!(SCENARIOS as readonly string[]).includes(s)) {
    process.stderr.write(`--only: unknown scenario "${s}" (${SCENARIOS.join(', ')})\n`);
    process.exit(2);
  }
}
const wanted = (s: (typeof SCENARIOS)[number]) => only.has(s);

const log = (m: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const started = Date.now();
// The gate lets the sharded replicas use the server-side filter; it changes nothing for the other scenarios.
const cp = await startControlPlane({ verbose: true, apiServerArgs: [SHARDED_WATCH_GATE] });
let failed = false;
try {
  await installCrds(cp.kubeconfigPath);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const ctx: ChaosContext = { kc, kubeconfigPath: cp.kubeconfigPath, hooks: { restartApiServer: cp.restartApiServer, restartEtcd: cp.restartEtcd }, log };
  const results: ScenarioResult[] = [];
  const run = async (r: Promise<ScenarioResult>) => {
    const res = await r;
    results.push(res);
    log(`\n${formatResult(res)}`);
  };
  if (wanted('single')) {
    await run(runPaymentChaos(ctx, {
      transactions: n, operatorKills: Math.ceil(kills / 2), apiServerRestarts: long ? 3 : 1, etcdRestarts: long ? 2 : 1,
      participantRestarts: long ? 6 : 1, hangs: true, faultRate: 0.3, createEveryMs: 300, quiesceTimeoutMs: 300_000,
    }));
  }
  if (wanted('leader-election')) {
    await run(runPaymentChaos(ctx, {
      transactions: n, operatorKills: Math.floor(kills / 2), leaderElect: true, apiServerRestarts: long ? 1 : 0,
      participantRestarts: long ? 2 : 0, hangs: true, faultRate: 0.2, createEveryMs: 300, quiesceTimeoutMs: 300_000,
    }));
  }
  if (wanted('racing')) await run(runRacingReplicas(ctx, { transactions: long ? 60 : 20, kills: long ? 4 : 1 }));
  if (wanted('isolation')) await run(runIsolation(ctx, { good: long ? 30 : 10, badPerKind: long ? 5 : 2, spreadMs: 500 }));
  if (wanted('hostile')) await run(runHostileTenant(ctx, { good: long ? 40 : 10, spreadMs: 300 }));
  if (wanted('sharded')) {
    // At least 500 transactions and 12 kills in the long run, whatever --transactions and --kills say.
    await run(runPaymentChaos(ctx, {
      transactions: long ? Math.max(500, n) : n, operatorKills: long ? Math.max(12, Math.ceil(kills / 2)) : Math.max(3, Math.ceil(kills / 2)),
      sharding: { replicas: 3, shards: 16, filter: 'auto', expectFilter: 'server' }, apiServerRestarts: long ? 1 : 0,
      participantRestarts: long ? 3 : 1, hangs: true, faultRate: 0.3, createEveryMs: 250, quiesceTimeoutMs: 300_000,
    }));
  }
  const total = results.reduce((a, r) => a + r.transactions, 0);
  const allKills = results.reduce((a, r) => a + (r.faults.operatorKill ?? 0), 0);
  log(`\nchaos suite: ${results.length} scenarios, ${total} transactions, ${allKills} operator SIGKILLs, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  failed = results.some((r) => r.violations.length > 0);
  log(failed ? 'FAILED: invariant violations above' : 'PASSED: every invariant holds');
} catch (err) {
  log(`chaos run crashed: ${(err as Error).stack ?? String(err)}`);
  failed = true;
} finally {
  await cp.stop();
}
process.exit(failed ? 1 : 0);

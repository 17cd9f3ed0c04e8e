/**
 * The chaos suite's short version (test/chaos/, `make chaos` runs the long
 * one). It starts its own control plane so it can restart kube-apiserver
 * without disturbing the other test files.
 *   - 40 payments, about half TCC and half Saga, with random participant
 *     errors, 3 operator SIGKILLs and one kube-apiserver restart: every
 *     transaction terminal, ledgers agree;
 *   - two replicas without leader election racing on 20 transactions: the
 *     decision never changes and the phase only moves forward;
 *   - misbehaving participants do not slow down other transactions;
 *   - a hostile tenant does not delay another beyond the stated bound (hostile.ts);
 *   - three active-active replicas with --shards 16 (the server filter: the
 *     control plane runs with the ShardedListAndWatch gate), 40 payments, 3
 *     SIGKILLs of random replicas: the killed replica's shards move and every
 *     invariant holds.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARDED_WATCH_GATE, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { installCrds } from '../support/crds.js';
import { formatResult, runIsolation, runPaymentChaos, runRacingReplicas, type ChaosContext } from '../chaos/driver.js';
import { BOUND_MS, runHostileTenant } from '../chaos/hostile.js';

let cp: ControlPlane;
let ctx: ChaosContext;
const log = (m: string) => process.stderr.write(`[chaos] ${m}\n`);

beforeAll(async () => {
  // The gate changes nothing for the unsharded scenarios; the sharded one uses the server filter through it.
  cp = await startControlPlane({ apiServerArgs: [SHARDED_WATCH_GATE] });
  await installCrds(cp.kubeconfigPath);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  ctx = { kc, kubeconfigPath: cp.kubeconfigPath, hooks: { restartApiServer: cp.restartApiServer }, log };
});

afterAll(async () => {
  await cp?.stop();
});

describe('chaos (short)', () => {
  it('40 TCC and Saga payments survive participant errors, 3 operator SIGKILLs and a kube-apiserver restart', async () => {
    const r = await runPaymentChaos(ctx, { transactions: 40, operatorKills: 3, apiServerRestarts: 1, faultRate: 0.3, createEveryMs: 250, quiesceTimeoutMs: 90_000 });
    log(formatResult(r));
    expect(r.violations).toEqual([]);
    expect(r.transactions).toBe(40);
    expect(r.committed + r.aborted).toBe(40);
    // Both modes ran (each transaction is a coin toss: all 40 alike is a 1 in 2^39 event).
    expect(r.byMode!.TCC.committed + r.byMode!.TCC.aborted).toBeGreaterThan(0);
    expect(r.byMode!.Saga.committed + r.byMode!.Saga.aborted).toBeGreaterThan(0);
    expect(r.faults.operatorKill).toBe(3);
    expect(r.faults.apiServerRestart).toBe(1);
  }, 170_000);

  it('two replicas without leader election never decide twice (20 transactions)', async () => {
    const r = await runRacingReplicas(ctx, { transactions: 20 });
    log(formatResult(r));
    expect(r.violations).toEqual([]);
    expect(r.committed + r.aborted).toBe(20);
  }, 120_000);

  it('misbehaving participants do not affect other transactions', async () => {
    const r = await runIsolation(ctx, { good: 8, badPerKind: 1, spreadMs: 1500 });
    log(formatResult(r));
    expect(r.violations).toEqual([]);
  }, 90_000);

  it(`a hostile tenant delays no other tenant's transaction by more than ${BOUND_MS / 1000} s`, async () => {
    const r = await runHostileTenant(ctx, { good: 10, spreadMs: 300 });
    log(formatResult(r));
    expect(r.violations).toEqual([]);
    expect(r.committed).toBe(10);
  }, 150_000);

  it('3 sharded replicas (--shards 16, server filter): 40 payments survive participant errors and 3 SIGKILLs of random replicas', async () => {
    const r = await runPaymentChaos(ctx, {
      transactions: 40, operatorKills: 3, sharding: { replicas: 3, shards: 16, expectFilter: 'server' }, faultRate: 0.3, createEveryMs: 250, quiesceTimeoutMs: 90_000,
    });
    log(formatResult(r));
    expect(r.violations).toEqual([]);
    expect(r.transactions).toBe(40);
    expect(r.committed + r.aborted).toBe(40);
    expect(r.faults.operatorKill).toBe(3);
  }, 170_000);
});

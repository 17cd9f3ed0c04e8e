/**
 * Sharded replicas against an API server that ignores shardSelector: this file
 * starts its own control plane WITHOUT the ShardedListAndWatch gate (the
 * shared one has it on). With --shard-filter auto every replica must find
 * that out and fall back to the client filter: it watches every transaction
 * and acts only on its shards. The suite of sharding.test.ts runs here with
 * that filter (describeShardingSuite):
 *   - every replica logs and reports mode=client; 16 shards as 6/5/5;
 *   - every replica's watch delivers the others' objects too (owned="false"
 *     at least the number of transactions outside its shards), yet each
 *     transaction is decided and finished only by the holder of its shard
 *     and commits once;
 *   - SIGKILL of one replica: its shards move and its transactions commit.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { installCrds } from '../support/crds.js';
import { describeShardingSuite } from '../support/sharded-replicas.js';

let cp: ControlPlane;
let kc: k8s.KubeConfig;

beforeAll(async () => {
  cp = await startControlPlane();
  await installCrds(cp.kubeconfigPath);
  kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
});

afterAll(async () => {
  await cp?.stop();
});

describeShardingSuite('client', () => ({ kc, kubeconfig: cp.kubeconfigPath, expectMode: 'client' }));

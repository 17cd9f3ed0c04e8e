/**
 * The informer cache drops payloads over 2 KiB in total (cache-transform.ts);
 * the operator reads them live right before it calls. A participant that
 * records what it received sees every branch's own payload, and spec.payload
 * for a branch without one, byte for byte.
 */
import * as grpc from '@grpc/grpc-js';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BranchRequest, SagaParticipantService } from '../../src/gen/kubetx/v1/participant.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let server: grpc.Server;
let port: number;
const received = new Map<string, string>();

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'payload-source');
  server = new grpc.Server();
  const execute = (call: grpc.ServerUnaryCall<BranchRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    received.set(call.request.branch, call.request.payload.toString('utf8'));
    callback(null, { message: '', data: Buffer.alloc(0) });
  };
  server.addService(SagaParticipantService, { execute, compensate: execute });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill();
  server?.forceShutdown();
});

it('a transaction whose payloads the cache dropped sends each branch its own payload, read live', async () => {
  const endpoint = { address: `127.0.0.1:${port}` };
  const shared = { order: 'A-1', note: 's'.repeat(3000) };
  const own = { sku: 'B-2', lines: Array.from({ length: 50 }, (_, i) => ({ i, text: 'line' })) };
  const tx = await transactions(kc).create({
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: 'big-payloads', namespace: ns },
    spec: {
      mode: 'Saga',
      payload: shared,
      branches: [
        { name: 'uses-shared', endpoint },
        { name: 'uses-own', endpoint, payload: own },
      ],
    },
  } as never);
  expect(tx).toBeTruthy();
  const done = await transactions(kc).untilPhase(ns, 'big-payloads', ['Completed', 'Failed']);
  expect(done.status?.phase).toBe('Completed');
  expect(JSON.parse(received.get('uses-shared') ?? 'null')).toEqual(shared);
  expect(JSON.parse(received.get('uses-own') ?? 'null')).toEqual(own);
});

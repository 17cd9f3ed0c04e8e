/**
 * TLS Secrets for endpoint.tls: only Secrets labelled kubetx.io/tls=true are
 * used, read from a watch (no GET per call), and a missing Secret and an
 * unlabelled one give the same message — the operator is no oracle for which
 * Secrets exist in a namespace (before: `secrets "x" not found` for one, a TLS
 * handshake with the other's key for the other), and no raw API client dump
 * (response headers, the operator's ServiceAccount) reaches lastError.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startHangingParticipant, type HangingParticipant } from '../support/hanging-participant.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let hang: HangingParticipant;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'tls');
  hang = await startHangingParticipant();
  const pem = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
  await kc.makeApiClient(k8s.CoreV1Api).createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'unlabelled' }, type: 'kubernetes.io/tls', data: { 'tls.crt': pem, 'tls.key': pem, 'ca.crt': pem } },
  });
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--read-tls-secrets'] });
});

afterAll(async () => {
  await operator?.kill();
  await hang?.stop();
});

function tlsTx(name: string, secretName: string): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: { mode: 'TCC', timeout: '1h', retry: { initialInterval: '200ms', maxInterval: '1s' }, branches: [{ name: 'a', endpoint: { address: `127.0.0.1:${hang.port}`, tls: { secretName } } }] },
  };
}

describe('endpoint.tls Secrets', () => {
  it('a missing and an unlabelled Secret give the same message, and no call is made with either', async () => {
    const txs = transactions(kc);
    await txs.create(tlsTx('with-missing', 'missing'));
    await txs.create(tlsTx('with-unlabelled', 'unlabelled'));
    const lastError = (name: string) =>
      eventually(`${name} lastError`, async () => (await txs.get(ns, name)).status?.branches?.[0]?.lastError);
    const missing = await lastError('with-missing');
    const unlabelled = await lastError('with-unlabelled');
    expect(missing.replace('"missing"', '"X"')).toBe(unlabelled.replace('"unlabelled"', '"X"'));
    expect(missing).toMatch(/carry the label kubetx\.io\/tls=true/);
    for (const text of [missing, unlabelled]) expect(text).not.toMatch(/system:serviceaccount|headers|Forbidden|not found/i);
    expect(hang.calls).toEqual([]);
  });
});

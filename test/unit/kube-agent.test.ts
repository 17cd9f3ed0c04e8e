import { Agent as HttpsAgent } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { reuseConnections } from '../../src/controller/kube-agent.js';

function kubeConfig(server: string, certData: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false, caData: Buffer.from('ca-bytes').toString('base64') }],
    users: [{ name: 'u', certData: Buffer.from(certData).toString('base64'), keyData: Buffer.from('key').toString('base64') }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

/** What an exec plugin's certificate rotation does to the loaded user. */
function setCert(kc: k8s.KubeConfig, cert: string): void {
  (kc.getCurrentUser() as { certData?: string }).certData = Buffer.from(cert).toString('base64');
}

async function agentOf(kc: k8s.KubeConfig): Promise<unknown> {
  const opts: Record<string, unknown> = {};
  await kc.applyToHTTPSOptions(opts);
  return opts.agent;
}

describe('reuseConnections', () => {
  it('client-node alone makes a new agent per request (the reason this exists)', async () => {
    const kc = kubeConfig('https://127.0.0.1:6443', 'cert-1');
    expect(await agentOf(kc)).not.toBe(await agentOf(kc));
  });

  it('hands every request the same keep-alive agent for one identity', async () => {
    const kc = kubeConfig('https://127.0.0.1:6443', 'cert-1');
    const made = reuseConnections(kc);
    const a = await agentOf(kc);
    const b = await agentOf(kc);
    expect(a).toBe(b);
    expect(a).toBeInstanceOf(HttpsAgent);
    expect((a as HttpsAgent & { keepAlive: boolean }).keepAlive).toBe(true);
    expect(made()).toBe(1);
  });

  it('a rotated client certificate gets a new agent, and the cache stays bounded', async () => {
    const kc = kubeConfig('https://127.0.0.1:6443', 'cert-1');
    const made = reuseConnections(kc);
    const first = await agentOf(kc);
    const seen = new Set([first]);
    for (let i = 2; i <= 10; i++) {
      setCert(kc, `cert-${i}`);
      seen.add(await agentOf(kc));
    }
    expect(seen.size).toBe(10);
    expect(made()).toBe(10);
    // cert-1 was evicted (only the last 4 identities are kept): it gets a fresh agent.
    setCert(kc, 'cert-1');
    expect(await agentOf(kc)).not.toBe(first);
    // The most recent one is still shared.
    setCert(kc, 'cert-10');
    expect(await agentOf(kc)).toBe(await agentOf(kc));
  });

  it('leaves plain-HTTP clusters to client-node', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:8001', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const made = reuseConnections(kc);
    await agentOf(kc);
    expect(made()).toBe(0);
  });
});

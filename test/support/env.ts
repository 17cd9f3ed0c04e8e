/**
 * What an integration test needs from the shared control plane: a KubeConfig,
 * typed API clients, and a fresh namespace of its own (namespaces are never
 * deleted: without kube-controller-manager they would stay Terminating).
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { inject } from 'vitest';

export function kubeconfigPath(): string {
  return inject('kubeconfig');
}

export function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

export async function freshNamespace(kc: k8s.KubeConfig, prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'kubetx.io/test': 'true' } } } });
  return name;
}

/** Polls `probe` until it returns a value other than undefined; no fixed sleeps stand in for synchronisation. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Polls `probe` until it returns a value other than undefined, like
 * `eventually`, but judges progress instead of a wall-clock total: it gives up
 * only once `lastProgress()` (when the awaited work last moved) is more than
 * `stallMs` ago, so a loaded machine that is merely slow still passes. The
 * error says what `describe` reports about the stall.
 */
export async function whileProgressing<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  lastProgress: () => number,
  stallMs: number,
  describe: () => Promise<string> = async () => '',
): Promise<T> {
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    const quiet = Date.now() - lastProgress();
    if (quiet > stallMs) {
      const detail = await describe().catch((err: unknown) => `(could not describe the stall: ${String(err)})`);
      throw new Error(`no progress for ${quiet} ms (stall window ${stallMs} ms) waiting for ${what}${last ? `: ${String(last)}` : ''}\n${detail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

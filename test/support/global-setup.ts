/**
 * Vitest global setup for the integration project: one real control plane per
 * run (or an existing cluster when KUBETX_E2E_KUBECONFIG names one, e.g. kind),
 * with the CRDs from crds/ installed and Established.
 */
import type { TestProject } from 'vitest/node';
import { SHARDED_WATCH_GATE, startControlPlane, type ControlPlane } from './control-plane.js';
import { installCrds } from './crds.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    serverVersion: string;
    /** True when the tests run against a control plane this run started (not a user's cluster). */
    localControlPlane: boolean;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = process.env.KUBETX_E2E_KUBECONFIG;
  let cp: ControlPlane | undefined;
  let kubeconfig: string;
  if (existing) {
    kubeconfig = existing;
    process.stderr.write(`[global-setup] using the existing cluster in ${existing}\n`);
  } else {
    const started = Date.now();
    // Server-side sharded list/watch (KEP-5866, alpha) for the sharding tests; test/integration/sharding-client-filter.test.ts starts a control plane without it.
    cp = await startControlPlane({ verbose: true, apiServerArgs: [SHARDED_WATCH_GATE] });
    kubeconfig = cp.kubeconfigPath;
    process.stderr.write(
      `[global-setup] started kube-apiserver ${cp.version} (etcd + kube-apiserver from ${cp.binDir}) at ${cp.server} in ${Date.now() - started} ms\n`,
    );
  }
  const version = await installCrds(kubeconfig);
  project.provide('kubeconfig', kubeconfig);
  project.provide('serverVersion', version);
  project.provide('localControlPlane', cp !== undefined);

  const stop = async () => {
    await cp?.stop();
  };
  // Ctrl-C during a run: vitest may not reach the teardown.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void stop().finally(() => process.exit(130)));
  }
  return stop;
}

/**
 * Installs every CRD under crds/ the way a user would (kubectl apply
 * --server-side) and waits until the API server really serves them.
 *
 * Not through client-node: its typed models use camelCase property names, so a
 * CRD read from YAML would lose every x-kubernetes-* key on the way out.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { repoRoot, testenvKubectl } from './testenv-paths.js';

/** `crdDir`: another checkout's crds/ (the benchmark's A/B baseline). */
export async function installCrds(kubeconfigPath: string, crdDir = join(repoRoot, 'crds')): Promise<string> {
  const kubectl = (...args: string[]) =>
    execFileSync(testenvKubectl(), ['--kubeconfig', kubeconfigPath, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const applied = kubectl('apply', '--server-side', '--force-conflicts', '-f', crdDir, '-o', 'name');
  const names = applied.split('\n').filter(Boolean);
  kubectl('wait', '--for=condition=Established', '--timeout=60s', ...names);

  // Established is not the end: the watch cache of a new resource answers 429
  // "storage is (re)initializing" for a moment. Wait until a list succeeds.
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const deadline = Date.now() + 60_000;
  for (const name of names) {
    const [plural, ...groupParts] = name.replace(/^customresourcedefinition\.apiextensions\.k8s\.io\//, '').split('.');
    const crd = await kc.makeApiClient(k8s.ApiextensionsV1Api).readCustomResourceDefinition({ name: `${plural}.${groupParts.join('.')}` });
    for (;;) {
      try {
        await kc.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject({
          group: crd.spec.group, version: crd.spec.versions[0]!.name, plural: crd.spec.names.plural,
        });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${name} not listable after 60s: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  const version = await kc.makeApiClient(k8s.VersionApi).getCode();
  return version.gitVersion;
}

/**
 * Where hack/testenv.sh put the control-plane binaries. The versions live in
 * hack/testenv.env so the build script and the harness cannot disagree.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface TestenvVersions {
  K8S_VERSION: string;
  ETCD_VERSION: string;
  HELM_VERSION: string;
}

export function testenvVersions(): TestenvVersions {
  const text = readFileSync(join(repoRoot, 'hack/testenv.env'), 'utf8');
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) values[m[1]!] = m[2]!;
  }
  for (const key of ['K8S_VERSION', 'ETCD_VERSION', 'HELM_VERSION'] as const) {
    if (!values[key]) throw new Error(`hack/testenv.env: ${key} is not set`);
  }
  return values as unknown as TestenvVersions;
}

/** The bin directory of the cached build; throws with the command to run when it is incomplete. */
export function testenvBinDir(): string {
  const v = testenvVersions();
  const cacheRoot =
    process.env.KUBETX_TESTENV_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kubetx/testenv');
  const dir = join(cacheRoot, `k8s-${v.K8S_VERSION}-etcd-${v.ETCD_VERSION}-helm-${v.HELM_VERSION}`, 'bin');
  for (const tool of ['kube-apiserver', 'etcd', 'kubectl']) {
    if (!existsSync(join(dir, tool))) {
      throw new Error(`test control plane: ${join(dir, tool)} is missing; build it with: make testenv (hack/testenv.sh)`);
    }
  }
  return dir;
}

/** kubectl from the testenv build (Debian's is 1.20: too old for `create token` and server-side apply of CEL rules). */
export function testenvKubectl(): string {
  return join(testenvBinDir(), 'kubectl');
}

/**
 * The main job, on one machine with no cluster: a local control plane (etcd +
 * kube-apiserver from hack/testenv.sh), the kubetx operator, and the seed's
 * four payment services; then the payment example — one order paid
 * (→ Committed) and one refused for lack of stock (→ Aborted) — with the
 * services' ledgers before and after.
 *
 *   npx tsx hack/demo.ts          run the example, then stop everything
 *   npx tsx hack/demo.ts --keep   leave it all running and print how to reach it (Ctrl-C stops)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../test/support/control-plane.js';
import { installCrds } from '../test/support/crds.js';
import { repoRoot, testenvKubectl } from '../test/support/testenv-paths.js';

const keep = process.argv.includes('--keep');
const say = (msg: string) => process.stdout.write(`\n\x1b[1m== ${msg}\x1b[0m\n`);
const children: ChildProcess[] = [];

async function main(): Promise<void> {
  say('starting the local control plane (etcd + kube-apiserver)');
  const cp = await startControlPlane({ verbose: true });
  const stopAll = async () => {
    for (const c of children) c.kill('SIGTERM');
    await cp.stop();
  };
  process.on('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  const kubectl = (...args: string[]) =>
    execFileSync(testenvKubectl(), ['--kubeconfig', cp.kubeconfigPath, ...args], { encoding: 'utf8' });
  try {
    await installCrds(cp.kubeconfigPath);
    process.stdout.write(kubectl('get', 'crd'));
    kubectl('create', 'namespace', 'shop');

    say('starting the payment services (order, inventory, credit, warehouse) on 127.0.0.1:50051-50054');
    const dbDir = mkdtempSync(join(tmpdir(), 'kubetx-demo-'));
    const services = spawnLogged('participants', ['--import', 'tsx', 'examples/payment/server.ts', '--all', '--base-port', '50051', '--host', '127.0.0.1', '--db-dir', dbDir]);
    await waitForOutput(services, /payment service ready.*"service":"warehouse"|"service":"warehouse".*payment service ready/);

    say('starting the kubetx operator (raw loopback addresses allowed: the services run outside any cluster)');
    const operator = spawnLogged('operator', ['--import', 'tsx', 'src/main.ts', '--kubeconfig', cp.kubeconfigPath, '--allow-raw-addresses', '--allow-address-cidr', '127.0.0.0/8',
      '--metrics-bind-address', '127.0.0.1:0', '--health-probe-bind-address', '127.0.0.1:0']);
    await waitForOutput(operator, /controller started/);

    say('ledgers before');
    process.stdout.write(ledgers(dbDir));

    say('kubectl apply: pay order 1001 (succeeds) and order 1002 (asks for 1000 units: refused)');
    process.stdout.write(kubectl('apply', '-f', join(repoRoot, 'examples/payment/manifests/local/pay-order-success.yaml')));
    process.stdout.write(kubectl('apply', '-f', join(repoRoot, 'examples/payment/manifests/local/pay-order-refused.yaml')));
    for (const name of ['pay-order-1001', 'pay-order-1002']) {
      kubectl('wait', '-n', 'shop', `dtx/${name}`, '--for=jsonpath={.status.completionTime}', '--timeout=60s');
    }
    process.stdout.write(kubectl('get', 'dtx', '-n', 'shop', '-o', 'wide'));

    say('kubectl describe dtx pay-order-1002 (the refused one)');
    process.stdout.write(kubectl('describe', 'dtx', '-n', 'shop', 'pay-order-1002'));

    say('ledgers after');
    process.stdout.write(ledgers(dbDir));

    if (keep) {
      say('still running — Ctrl-C stops everything');
      process.stdout.write(`export KUBECONFIG=${cp.kubeconfigPath}\n${testenvKubectl()} get dtx -A\n`);
      await new Promise(() => undefined);
    }
  } finally {
    if (!keep) await stopAll();
  }
}

function spawnLogged(name: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
  children.push(child);
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  return child;
}

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        seen = '';
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before ${pattern}`)));
  });
}

function ledgers(dbDir: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'examples/payment/ledger.ts', '--db-dir', dbDir, '--no-barrier'], { cwd: repoRoot, encoding: 'utf8' });
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
});

/**
 * The main job, on one machine with no cluster: a local control plane (etcd +
 * kube-apiserver from hack/testenv.sh), the kubetx operator, and the seed's
 * four payment services; then the payment example — one order paid
 * (→ Committed) and one refused for lack of stock (→ Aborted) — with the
 * services' ledgers before and after.
 *
 *   npx tsx hack/demo.ts          run the example, then stop and remove everything
 *   npx tsx hack/demo.ts --keep   leave it all running and print how to reach it
 *                                 (Ctrl-C or `kill $(cat .tmp/demo/demo.pid)` stops it)
 *
 * What it creates (demoPaths): the control plane's own temp dir (removed by
 * cp.stop()) and, in the repository, .tmp/demo/ (gitignored): the
 * participants' SQLite files (db/), operator.log, participants.log, a copy of
 * the kubeconfig and demo.pid. Without --keep all of it is removed at exit,
 * on Ctrl-C and on SIGTERM too; with --keep, stopping removes everything but
 * the two log files (cleanupPlan says which).
 *
 * The operator runs with leader election (Lease default/kubetx-operator), so
 * an operator started by an example README beside it with --leader-elect
 * waits instead of acting on the same objects twice.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ControlPlane, startControlPlane } from '../test/support/control-plane.js';
import { installCrds } from '../test/support/crds.js';
import { repoRoot, testenvKubectl } from '../test/support/testenv-paths.js';

/** The Lease the demo's operator holds; example READMEs start theirs with the same one. */
export const DEMO_LEASE = { namespace: 'default', name: 'kubetx-operator' } as const;

export interface DemoPaths {
  /** .tmp/demo in the repository: everything the demo writes but the control plane's own dir. */
  runDir: string;
  dbDir: string;
  operatorLog: string;
  participantsLog: string;
  /** A copy of the control plane's kubeconfig at a stable path, for the example READMEs. */
  kubeconfig: string;
  pidFile: string;
}

export function demoPaths(root: string): DemoPaths {
  const runDir = join(root, '.tmp', 'demo');
  return {
    runDir,
    dbDir: join(runDir, 'db'),
    operatorLog: join(runDir, 'operator.log'),
    participantsLog: join(runDir, 'participants.log'),
    kubeconfig: join(runDir, 'kubeconfig'),
    pidFile: join(runDir, 'demo.pid'),
  };
}

/** What stopping removes and what it leaves: without --keep nothing is left; with it, the logs. */
export function cleanupPlan(paths: DemoPaths, keep: boolean): { remove: string[]; leave: string[] } {
  if (!keep) return { remove: [paths.runDir], leave: [] };
  return { remove: [paths.dbDir, paths.kubeconfig, paths.pidFile], leave: [paths.operatorLog, paths.participantsLog] };
}

/** Carries out cleanupPlan; removes runDir too if nothing is left in it. */
export function cleanUp(paths: DemoPaths, keep: boolean): string[] {
  const plan = cleanupPlan(paths, keep);
  for (const p of plan.remove) rmSync(p, { recursive: true, force: true });
  return plan.leave.filter((p) => existsSync(p));
}

const say = (msg: string) => process.stdout.write(`\n\x1b[1m== ${msg}\x1b[0m\n`);
const rel = (p: string) => relative(process.cwd(), p) || '.';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const paths = demoPaths(repoRoot);
  const children: ChildProcess[] = [];
  const logs: WriteStream[] = [];

  if (existsSync(paths.pidFile)) {
    const pid = Number(readFileSync(paths.pidFile, 'utf8').trim());
    if (pid > 0 && alive(pid)) {
      process.stderr.write(
        `a demo is already running (pid ${pid}); use it rather than starting a second control plane and operator:\n` +
          `  export KUBECONFIG=${paths.kubeconfig}\n  stop it with: kill ${pid}\n`,
      );
      process.exit(1);
    }
  }
  rmSync(paths.runDir, { recursive: true, force: true }); // what a killed (SIGKILL) run left
  mkdirSync(paths.dbDir, { recursive: true });
  writeFileSync(paths.pidFile, `${process.pid}\n`);

  let cp: ControlPlane | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              const force = setTimeout(() => c.kill('SIGKILL'), 10_000);
              c.once('exit', () => {
                clearTimeout(force);
                resolve();
              });
              c.kill('SIGTERM');
            }),
        ),
      );
      await Promise.all(logs.map((l) => new Promise<void>((resolve) => l.end(resolve))));
      await cp?.stop();
      const left = cleanUp(paths, keep);
      if (!keep) process.stdout.write(`\nstopped and removed: ${rel(paths.runDir)}/ (databases, logs, kubeconfig) and the control plane's ${cp?.dir ?? 'temp dir'}\n`);
      else {
        process.stdout.write(`\nstopped: control plane, operator and participants; removed ${rel(paths.dbDir)}/ and the control plane's temp dir\n`);
        if (left.length) process.stdout.write(`left (in the repository, gitignored): ${left.map(rel).join(', ')}; remove with: rm -r ${rel(paths.runDir)}\n`);
      }
    })());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => void stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143)));
  }

  const spawnLogged = (name: string, args: string[], logFile: string): { child: ChildProcess; waitFor: (re: RegExp) => Promise<RegExpExecArray> } => {
    const log = createWriteStream(logFile, { flags: 'a' });
    logs.push(log);
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    children.push(child);
    let seen = '';
    const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
    const onData = (d: Buffer) => {
      log.write(d);
      seen = (seen + d.toString()).slice(-64_000);
      for (const w of [...waiters]) {
        const m = w.re.exec(seen);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const waitFor = (re: RegExp, timeoutMs = 60_000) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const m = re.exec(seen);
        if (m) return resolve(m);
        const timer = setTimeout(() => reject(new Error(`${name}: timed out waiting for ${re} (log: ${rel(logFile)})`)), timeoutMs);
        waiters.push({ re, resolve: (x) => (clearTimeout(timer), resolve(x)) });
        child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before ${re} (log: ${rel(logFile)})`)));
      });
    return { child, waitFor };
  };

  try {
    say('starting the local control plane (etcd + kube-apiserver)');
    cp = await startControlPlane({ verbose: true });
    copyFileSync(cp.kubeconfigPath, paths.kubeconfig);
    const kubectl = (...args: string[]) =>
      execFileSync(testenvKubectl(), ['--kubeconfig', paths.kubeconfig, ...args], { encoding: 'utf8' });
    await installCrds(paths.kubeconfig);
    process.stdout.write(kubectl('get', 'crd'));
    kubectl('create', 'namespace', 'shop');

    say(`starting the payment services (order, inventory, credit, warehouse) on 127.0.0.1:50051-50054, log ${rel(paths.participantsLog)}`);
    const services = spawnLogged('participants', ['--import', 'tsx', 'examples/payment/server.ts', '--all', '--base-port', '50051', '--host', '127.0.0.1', '--db-dir', paths.dbDir], paths.participantsLog);
    await services.waitFor(/payment service ready.*"service":"warehouse"|"service":"warehouse".*payment service ready/);

    say(`starting the kubetx operator (leader election on, raw loopback addresses allowed), log ${rel(paths.operatorLog)}${keep ? '' : ' (removed at exit; --keep keeps it)'}`);
    const operator = spawnLogged('operator', ['--import', 'tsx', 'src/main.ts', '--kubeconfig', paths.kubeconfig, '--allow-raw-addresses', '--allow-address-cidr', '127.0.0.0/8',
      '--leader-elect', '--leader-election-namespace', DEMO_LEASE.namespace, '--leader-election-id', DEMO_LEASE.name,
      '--metrics-bind-address', '127.0.0.1:0', '--health-probe-bind-address', '127.0.0.1:0'], paths.operatorLog);
    const portOf = (line: RegExpExecArray) => (JSON.parse(line[0]) as { port: number }).port;
    const metricsPort = portOf(await operator.waitFor(/^\{.*"serving \/metrics".*\}$/m));
    const healthPort = portOf(await operator.waitFor(/^\{.*"serving \/healthz and \/readyz".*\}$/m));
    await operator.waitFor(/controller started/);

    say('ledgers before');
    process.stdout.write(ledgers(paths.dbDir));

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
    process.stdout.write(ledgers(paths.dbDir));

    if (keep) {
      say('still running (--keep)');
      const plan = cleanupPlan(paths, true);
      process.stdout.write(
        [
          `kubeconfig:       export KUBECONFIG=${paths.kubeconfig}`,
          `kubectl:          ${testenvKubectl()}   (e.g. ${testenvKubectl()} get dtx -A)`,
          `API server:       ${cp.server}`,
          `operator metrics: http://127.0.0.1:${metricsPort}/metrics`,
          `operator health:  http://127.0.0.1:${healthPort}/healthz  http://127.0.0.1:${healthPort}/readyz`,
          `operator log:     ${paths.operatorLog}   (tail -f it)`,
          `participants log: ${paths.participantsLog}`,
          `participant DBs:  ${paths.dbDir}/{order,inventory,credit,warehouse}.db (127.0.0.1:50051-50054)`,
          `leader election:  Lease ${DEMO_LEASE.namespace}/${DEMO_LEASE.name}; the examples' READMEs apply their manifests against this operator`,
          `control plane:    ${cp.dir} (etcd data, certificates, logs)`,
          '',
          `stop:             Ctrl-C here, or kill ${process.pid} (pid also in ${rel(paths.pidFile)})`,
          `stopping removes: ${[...plan.remove.map(rel), cp.dir].join(', ')}`,
          `stopping leaves:  ${plan.leave.map(rel).join(', ')} (gitignored; rm -r ${rel(paths.runDir)} removes them)`,
          '',
        ].join('\n'),
      );
      await new Promise(() => undefined);
    }
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    if (existsSync(paths.operatorLog)) {
      process.stderr.write(`--- last lines of ${rel(paths.operatorLog)} (removed at exit) ---\n`);
      process.stderr.write(`${readFileSync(paths.operatorLog, 'utf8').split('\n').slice(-30).join('\n')}\n`);
    }
    process.exitCode = 1;
  } finally {
    if (!keep || process.exitCode) await stopAll();
  }
}

function ledgers(dbDir: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'examples/payment/ledger.ts', '--db-dir', dbDir, '--no-barrier'], { cwd: repoRoot, encoding: 'utf8' });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

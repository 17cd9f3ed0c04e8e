/**
 * A real, local Kubernetes control plane for tests and the local demo: etcd and
 * kube-apiserver built by hack/testenv.sh, started on free loopback ports in a
 * temporary directory — the idea of controller-runtime's envtest.
 *
 * It makes its own CA, serving certificate, admin client certificate
 * (O=system:masters) and service-account signing key, so RBAC, TokenRequest,
 * CRDs with CEL, watches, Leases and Events all behave as in a cluster. There is
 * no kube-controller-manager: no garbage collection and no default
 * ServiceAccounts; tests use fresh namespaces instead of deleting them.
 *
 * Children are killed on stop(), on process exit, and — if this process dies
 * without running any handler (SIGKILL) — by a detached reaper that watches our
 * pid, so no etcd or kube-apiserver outlives the run.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testenvBinDir } from './testenv-paths.js';

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  kubeconfigPath: string;
  /** e.g. v1.37.2, as reported by the running server's /version. */
  version: string;
  dir: string;
  binDir: string;
  caPem: string;
  /** Stops kube-apiserver, then etcd. Idempotent. */
  stop(): Promise<void>;
  /** Restarts kube-apiserver (same port, same data) — for fault-injection tests. */
  restartApiServer(): Promise<void>;
  /** Restarts etcd (same port, same data directory) — for fault-injection tests. */
  restartEtcd(): Promise<void>;
}

export interface StartOptions {
  /** Log lines to stderr while starting. */
  verbose?: boolean;
  /** Keep etcd's fsync (benchmarks). Tests skip it for speed. */
  fsync?: boolean;
  /** Extra kube-apiserver flags. */
  apiServerArgs?: string[];
}

const startTimeoutMs = 120_000;

/** kube-apiserver flag turning on server-side sharded LIST/WATCH (KEP-5866). */
export const SHARDED_WATCH_GATE = '--feature-gates=ShardedListAndWatch=true';

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const binDir = testenvBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-cp-'));
  const log = (msg: string) => opts.verbose && process.stderr.write(`[control-plane] ${msg}\n`);
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killAll);

  try {
    const certs = makeCertificates(dir);
    const [etcdPort, etcdPeerPort, apiPort] = await freePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;

    const etcdArgs = [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      '--log-level=warn',
      ...(opts.fsync ? [] : ['--unsafe-no-fsync']),
    ];
    const startEtcd = () => {
      const child = spawnLogged(join(binDir, 'etcd'), etcdArgs, join(dir, 'etcd.log'));
      children.push(child);
      return child;
    };
    let etcd = startEtcd();
    const reaperTimer = startReaper(dir, () => children.map((c) => c.pid).filter((p): p is number => p !== undefined));
    await waitFor(`etcd on ${etcdUrl}`, etcd, () => httpOk(`${etcdUrl}/health`));
    log(`etcd ready on ${etcdUrl}`);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${dir}`,
      `--tls-cert-file=${certs.servingCert}`,
      `--tls-private-key-file=${certs.servingKey}`,
      `--client-ca-file=${certs.caCert}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      '--service-cluster-ip-range=10.0.0.0/24',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${certs.saPub}`,
      `--service-account-signing-key-file=${certs.saKey}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      // No kube-controller-manager or nodes: the kubernetes Service's endpoints need no upkeep (envtest does the same).
      '--endpoint-reconciler-type=none',
      ...(opts.apiServerArgs ?? []),
    ];
    const startApiServer = async () => {
      const api = spawnLogged(join(binDir, 'kube-apiserver'), apiArgs, join(dir, 'kube-apiserver.log'));
      children.push(api);
      await waitFor(`kube-apiserver on ${server}`, api, () => httpsOk(`${server}/readyz`, certs));
      await waitFor('the default namespace', api, () => httpsOk(`${server}/api/v1/namespaces/default`, certs));
      return api;
    };
    let api = await startApiServer();
    const version = JSON.parse(await httpsGet(`${server}/version`, certs)).gitVersion as string;
    log(`kube-apiserver ${version} ready on ${server}`);

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, certs), { mode: 0o600 });

    let stopped = false;
    return {
      server,
      kubeconfigPath,
      version,
      dir,
      binDir,
      caPem: readFileSync(certs.caCert, 'utf8'),
      async stop() {
        if (stopped) return;
        stopped = true;
        clearInterval(reaperTimer);
        await terminate(api);
        await terminate(etcd);
        process.off('exit', killAll);
        rmSync(dir, { recursive: true, force: true });
      },
      async restartApiServer() {
        await terminate(api);
        api = await startApiServer();
      },
      async restartEtcd() {
        await terminate(etcd);
        etcd = startEtcd();
        await waitFor(`etcd on ${etcdUrl}`, etcd, () => httpOk(`${etcdUrl}/health`));
      },
    };
  } catch (err) {
    killAll();
    process.off('exit', killAll);
    const tail = (f: string) => {
      try {
        return readFileSync(join(dir, f), 'utf8').split('\n').slice(-30).join('\n');
      } catch {
        return '(no log)';
      }
    };
    throw new Error(
      `${(err as Error).message}\n--- etcd.log (tail) ---\n${tail('etcd.log')}\n--- kube-apiserver.log (tail) ---\n${tail('kube-apiserver.log')}`,
    );
  }
}

export interface Certificates {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

/**
 * A throwaway CA, a serving certificate for 127.0.0.1/localhost (serverAuth) and
 * a client certificate (clientAuth), as PEM files in `dir`: the control plane's,
 * and any test server's that needs TLS (the broker tests' nats-server).
 * openssl is on every Debian image; .ci/run installs it where missing.
 */
export function makeCertificates(dir: string): Certificates {
  const p = (f: string) => join(dir, f);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=kubetx-test-ca',
    '-keyout', p('ca.key'), '-out', p('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const signed = (name: string, subj: string, ext: string) => {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', subj, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`));
    writeFileSync(p(`${name}.ext`), ext);
    ossl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
      '-days', '2', '-out', p(`${name}.crt`), '-extfile', p(`${name}.ext`));
  };
  signed('serving', '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n');
  signed('admin', '/O=system:masters/CN=admin', 'extendedKeyUsage=clientAuth\n');
  ossl('genrsa', '-out', p('sa.key'), '2048');
  ossl('rsa', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub'));
  return {
    caCert: p('ca.crt'), caKey: p('ca.key'), servingCert: p('serving.crt'), servingKey: p('serving.key'),
    adminCert: p('admin.crt'), adminKey: p('admin.key'), saKey: p('sa.key'), saPub: p('sa.pub'),
  };
}

function kubeconfigYaml(server: string, c: Certificates): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: kubetx-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(c.caCert)}
users:
- name: admin
  user:
    client-certificate-data: ${b64(c.adminCert)}
    client-key-data: ${b64(c.adminKey)}
contexts:
- name: kubetx-test
  context: {cluster: kubetx-test, user: admin}
current-context: kubetx-test
`;
}

function spawnLogged(bin: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  return spawn(bin, args, { stdio: ['ignore', fd, fd] });
}

/**
 * A detached shell that outlives us: once our pid is gone it SIGKILLs the
 * children listed in a file. Covers the one case no handler can: SIGKILL of the
 * test runner.
 */
function startReaper(dir: string, pids: () => number[]): NodeJS.Timeout {
  const pidFile = join(dir, 'children.pids');
  const update = () => writeFileSync(pidFile, pids().join(' '));
  update();
  const reaper = spawn('bash', ['-c',
    `while kill -0 ${process.pid} 2>/dev/null && [ -e "${pidFile}" ]; do sleep 1; done; ` +
    `[ -e "${pidFile}" ] && kill -9 $(cat "${pidFile}") 2>/dev/null; rm -rf "${dir}"`,
  ], { detached: true, stdio: 'ignore' });
  reaper.unref();
  // Children started later (an API server restart) must be listed too.
  const timer = setInterval(update, 1000);
  timer.unref();
  return timer;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function waitFor(what: string, child: ChildProcess, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  let delay = 50;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`waiting for ${what}: process exited (${child.exitCode ?? child.signalCode})`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 500);
  }
  throw new Error(`waiting for ${what}: not ready after ${startTimeoutMs / 1000}s`);
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url);
  return res.ok;
}

function httpsGet(url: string, c: Certificates): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      ca: readFileSync(c.caCert), cert: readFileSync(c.adminCert), key: readFileSync(c.adminKey), timeout: 5000,
    }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode} ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

async function httpsOk(url: string, c: Certificates): Promise<boolean> {
  await httpsGet(url, c);
  return true;
}

/**
 * Broker credentials from Secrets in the operator's namespace (issue 21):
 * a nats-server that requires a token and a redis-server whose only
 * capable user is an ACL user with a password. The operator reads
 * --nats-secret (key `token`) and --redis-secret (`username`, `password`) and
 * delivers on both routes; without the Secret it refuses to start, naming it.
 * And TLS: a nats-server that takes only mutual TLS (ca.crt, tls.crt and tls.key
 * of --nats-secret) and a redis-server on a TLS port that asks for client certificates (rediss://;
 * ca.crt, tls.crt, tls.key of --redis-secret).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { RouteSwitch } from '../../src/brokers/route-switch.js';
import { freePorts, makeCertificates } from '../support/control-plane.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

const TOKEN = 'nats-token-9f3b';
const REDIS_USER = 'kubetx';
const REDIS_PASSWORD = 'redis-pass-41c7';
const STREAM = 'KUBETX_CREDS';

let kc: k8s.KubeConfig;
let ns: string;
let nats: NatsServer;
let redis: RedisServer;
let operator: OperatorProcess | undefined;
let txs: ReturnType<typeof transactions>;

const brokerArgs = (natsSecret: string) => [
  '--nats-url', nats.url,
  '--nats-secret', natsSecret,
  '--redis-url', redis.url,
  '--redis-secret', 'redis-auth',
  '--leader-election-namespace', ns,
];

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'broker-creds');
  txs = transactions(kc);
  [nats, redis] = await Promise.all([
    startNats({ config: [`authorization { token: "${TOKEN}" }`] }),
    // PING stays open to everyone (the harness's readiness check); everything else needs the ACL user.
    startRedis({ args: ['--user', 'default', 'on', 'nopass', '+ping', '--user', REDIS_USER, 'on', `>${REDIS_PASSWORD}`, '~*', '&*', '+@all'] }),
  ]);
  const nc = await connect({ servers: nats.url, token: TOKEN });
  await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: [`kubetx.${ns}.>`], storage: StorageType.Memory });
  await nc.close();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'nats-auth' }, stringData: { token: TOKEN } } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'redis-auth' }, stringData: { username: REDIS_USER, password: REDIS_PASSWORD } } });
}, 120_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await Promise.all([nats?.stop(), redis?.stop()]);
});

let n = 0;
const notify = (): DistributedTransaction =>
  ({
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: `creds-${n++}`, namespace: ns, uid: '' },
    spec: { mode: 'Notify', payload: { n }, branches: [{ name: 'audit', broker: { subject: 'audit' } }] },
  }) as DistributedTransaction;

describe('broker credentials from Secrets', () => {
  it('a Secret that does not exist: the operator does not start, and says which', async () => {
    const failed = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: brokerArgs('no-such-secret') }).then(
      (p) => p.kill('SIGKILL').then(() => 'started'),
      (err: Error) => err.message,
    );
    expect(failed).toContain(`--nats-secret: Secret ${ns}/no-such-secret: not found`);
  });

  it('TLS: mutual TLS to NATS (CA, client certificate and key from --nats-secret), rediss:// with the CA and a client certificate from --redis-secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubetx-nats-tls-'));
    const certs = makeCertificates(dir);
    const tlsNats = await startNats({ config: [`tls { cert_file: "${certs.servingCert}", key_file: "${certs.servingKey}", ca_file: "${certs.caCert}", verify: true }`] });
    // The plain port stays for the harness's readiness check; the operator is given only the TLS one.
    const [tlsPort] = (await freePorts(1)) as [number];
    const tlsRedis = await startRedis({ args: ['--tls-port', String(tlsPort), '--tls-cert-file', certs.servingCert, '--tls-key-file', certs.servingKey, '--tls-ca-cert-file', certs.caCert, '--tls-auth-clients', 'yes'] });
    try {
      const pem = (f: string) => readFileSync(f, 'utf8');
      const tls = { ca: pem(certs.caCert), cert: pem(certs.adminCert), key: pem(certs.adminKey) };
      // Without a client certificate the server refuses: the test would pass on a server that asks for none otherwise.
      await expect(connect({ servers: tlsNats.url, tls: { ca: tls.ca }, reconnect: false, timeout: 3000 })).rejects.toThrow();
      const nc = await connect({ servers: tlsNats.url, tls });
      await (await jetstreamManager(nc)).streams.add({ name: 'KUBETX_TLS', subjects: [`kubetx.${ns}.>`], storage: StorageType.Memory });
      await nc.close();
      const core = kc.makeApiClient(k8s.CoreV1Api);
      await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'nats-tls' }, stringData: { 'ca.crt': tls.ca, 'tls.crt': tls.cert, 'tls.key': tls.key } } });
      await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'redis-tls' }, stringData: { 'ca.crt': tls.ca, 'tls.crt': tls.cert, 'tls.key': tls.key } } });
      const tlsOperator = await startOperator({
        kubeconfig: kubeconfigPath(),
        namespaces: [ns],
        args: ['--nats-url', tlsNats.url, '--nats-secret', 'nats-tls', '--redis-url', `rediss://127.0.0.1:${tlsPort}`, '--redis-secret', 'redis-tls', '--leader-election-namespace', ns, '--broker-route-configmap', 'route-tls'],
      });
      try {
        await tlsOperator.waitForLog((l) => l.msg === 'nats: connected');
        const tx = await txs.create(notify());
        const done = await txs.untilPhase(ns, tx.metadata.name, ['Delivered'], 60_000);
        expect(done.status?.branches?.[0]?.delivery).toMatchObject({ route: 'nats', stream: 'KUBETX_TLS' });
        // Failed over by hand: the next message goes to Redis over TLS.
        const rs = new RouteSwitch({ kubeConfig: kc, namespace: ns, name: 'route-tls', identity: 'test' });
        await rs.start();
        await rs.flip('redis', { reason: 'Test', manual: true });
        rs.stop();
        await tlsOperator.waitForLog((l) => l.msg === 'broker route changed' && l.to === 'redis', 30_000);
        const viaRedis = await txs.create(notify());
        const onRedis = await txs.untilPhase(ns, viaRedis.metadata.name, ['Delivered'], 60_000);
        expect(onRedis.status?.branches?.[0]?.delivery?.route).toBe('redis');
      } finally {
        await tlsOperator.kill('SIGKILL');
      }
    } finally {
      await Promise.all([tlsNats.stop(), tlsRedis.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('NATS refuses the token at first: the operator keeps trying and connects once the server takes it', async () => {
    const wrong = await startNats({ config: ['authorization { token: "another-token" }'] });
    let retrying: OperatorProcess | undefined;
    try {
      retrying = await startOperator({
        kubeconfig: kubeconfigPath(),
        namespaces: [ns],
        args: ['--nats-url', wrong.url, '--nats-secret', 'nats-auth', '--redis-url', redis.url, '--redis-secret', 'redis-auth', '--leader-election-namespace', ns, '--broker-route-configmap', 'route-retry'],
      });
      await retrying.waitForLog((l) => l.msg === 'nats: cannot connect (delivery stays on the other route)', 30_000);
      // The server's side is fixed (it takes the operator's token now); no operator restart.
      await wrong.restart([`authorization { token: "${TOKEN}" }`]);
      await retrying.waitForLog((l) => l.msg === 'nats: connected', 30_000);
    } finally {
      await retrying?.kill('SIGKILL');
      await wrong.stop();
    }
  });

  it('token for NATS, ACL user and password for Redis: delivered on both routes', async () => {
    operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: brokerArgs('nats-auth') });
    await operator.waitForLog((l) => l.msg === 'nats: connected');
    const viaNats = await txs.create(notify());
    const a = await txs.untilPhase(ns, viaNats.metadata.name, ['Delivered'], 60_000);
    expect(a.status?.branches?.[0]?.delivery).toMatchObject({ route: 'nats', stream: STREAM });

    // A human's failover: the next message goes to Redis, as the ACL user.
    const rs = new RouteSwitch({ kubeConfig: kc, namespace: ns, identity: 'test' });
    await rs.start();
    expect((await rs.flip('redis', { reason: 'Test', manual: true })).flipped).toBe(true);
    rs.stop();
    await operator.waitForLog((l) => l.msg === 'broker route changed' && l.to === 'redis', 30_000);
    const viaRedis = await txs.create(notify());
    const b = await txs.untilPhase(ns, viaRedis.metadata.name, ['Delivered'], 60_000);
    expect(b.status?.branches?.[0]?.delivery?.route).toBe('redis');
    expect(b.status?.branches?.[0]?.delivery?.stream).toMatch(new RegExp(`^kubetx:kubetx\\.${ns}\\.audit:\\d+$`));
  });
});

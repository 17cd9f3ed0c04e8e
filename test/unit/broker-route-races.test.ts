/**
 * Two races of the broker route found by the broker bench, pinned down with
 * stand-ins for the ConfigMap API and the publishers (the real servers are in
 * test/integration/broker-router.test.ts and broker-delivery.test.ts):
 *
 * - a poll that read the ConfigMap before a flip's write but is answered after
 *   it must not win: the route is the newer resourceVersion's;
 * - a NATS publish in flight when another publish tripped the failover goes to
 *   Redis when it fails, instead of starting a new failure count and failing.
 */
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { BrokerError, BrokerRouter, brokerMessage, RouteSwitch, type NatsAck, type RedisQueues, type RouteState } from '../../src/brokers/index.js';

function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return kc;
}

describe('broker route races', () => {
  it('a poll answered after a flip but read before it does not bring the old route back', async () => {
    let stored: k8s.V1ConfigMap = { metadata: { name: 'kubetx-broker-route', namespace: 'ns', resourceVersion: '1' }, data: { route: 'redis', reason: 'NatsUnavailable', message: '', since: '', changedBy: 'a' } };
    const copy = (o: k8s.V1ConfigMap) => JSON.parse(JSON.stringify(o)) as k8s.V1ConfigMap;
    let releaseWrite!: () => void;
    const api = {
      readNamespacedConfigMap: async () => copy(stored),
      replaceNamespacedConfigMap: async ({ body }: { body: k8s.V1ConfigMap }) => {
        await new Promise<void>((r) => (releaseWrite = r));
        stored = { ...copy(body), metadata: { ...body.metadata, resourceVersion: String(Number(body.metadata!.resourceVersion) + 1) } };
        return copy(stored);
      },
    };
    const rs = new RouteSwitch({ kubeConfig: kubeConfig(), namespace: 'ns', identity: 'a', pollMs: 60_000 });
    (rs as unknown as { api: typeof api }).api = api;
    await rs.start();
    const flipping = rs.flip('nats', { reason: 'NatsRecovered', expect: 'redis' });
    await new Promise((r) => setImmediate(r));
    // The poll reads the old ConfigMap while the write is in flight, and is answered after it.
    const stale = copy(stored);
    api.readNamespacedConfigMap = async () => {
      await new Promise((r) => setImmediate(r));
      releaseWrite();
      await new Promise((r) => setTimeout(r, 5));
      return stale;
    };
    const polled = rs.refresh();
    const res = await flipping;
    await polled;
    expect(res).toMatchObject({ flipped: true, state: { route: 'nats' } });
    expect(rs.current().route).toBe('nats');
    expect(rs.current().resourceVersion).toBe('2');
    rs.stop();
  });

  it('a NATS publish in flight when another publish tripped the failover goes to Redis', async () => {
    let state: RouteState = { route: 'nats', reason: 'Initial', message: '', since: '', changedBy: 'x', manual: false, resourceVersion: '1' };
    const listeners = new Set<(s: RouteState, p: RouteState) => void>();
    const routeSwitch = {
      start: async () => state,
      stop: () => undefined,
      current: () => state,
      refresh: async () => state,
      onChange: (l: (s: RouteState, p: RouteState) => void) => (listeners.add(l), () => listeners.delete(l)),
      flip: async (to: 'nats' | 'redis', o: { expect?: string }) => {
        if (o.expect && state.route !== o.expect) return { flipped: false, state, refused: 'Superseded' as const };
        const prev = state;
        state = { ...state, route: to };
        for (const l of listeners) l(state, prev);
        return { flipped: true, state };
      },
    };
    let calls = 0;
    let timeOut!: () => void;
    const nats = {
      // The first publish was in flight at the kill: it times out later; the others fail at once.
      publish: async (): Promise<NatsAck> => {
        if (++calls === 1) {
          await new Promise<void>((r) => (timeOut = r));
          throw new BrokerError('unavailable', 'nats', 'Timeout', 'no ack');
        }
        throw new BrokerError('unavailable', 'nats', 'Disconnected', 'down');
      },
      probe: async () => {
        throw new Error('down');
      },
    };
    const redisSent: string[] = [];
    const redis = {
      publish: async (m: { id: string }) => (redisSent.push(m.id), { via: 'redis' as const, streamKey: 's', entryId: '1-0', duplicate: false }),
      open: async () => undefined,
      pendingTotal: async () => 0,
    } as unknown as RedisQueues;
    const router = new BrokerRouter({ nats, redis, routeSwitch: routeSwitch as unknown as RouteSwitch, identity: 'r', failureThreshold: 3, probeMs: 60_000 });
    await router.start();
    const msg = (i: number) => brokerMessage({ uid: `u${i}`, branch: 'b', key: `k${i}`, subject: 's.x', namespace: 'ns', name: 'tx', payload: {} });
    const inFlight = router.publish(msg(0));
    const others = [];
    for (let i = 1; i <= 4; i++) others.push(await router.publish(msg(i)).then((a) => a.via, (e: BrokerError) => e.reason));
    expect(others).toEqual(['Disconnected', 'Disconnected', 'redis', 'redis']);
    expect(router.route).toBe('redis');
    timeOut();
    expect((await inFlight).via).toBe('redis');
    expect(redisSent).toContain('u0/b');
    router.stop();
  });
});

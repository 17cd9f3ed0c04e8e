/**
 * The chart's broker alerts (KubetxBrokerFailedOver, KubetxBrokerUndeliverable)
 * against the REAL /metrics of an operator delivering broker branches through
 * a real nats-server (JetStream) and redis-server, evaluated by `promtool
 * test rules` the way chart-monitoring.test.ts evaluates the other alerts.
 *
 * One operator process, scraped four times while this file breaks its brokers
 * for real:
 *
 * - healthy: Notify transactions with a broker branch delivered through NATS;
 * - failed over: NATS SIGKILLed, the failing publishes flip the route to
 *   redis, and the next notifications are delivered through Redis;
 * - undeliverable: Redis SIGKILLed too, a notification keeps failing
 *   `unavailable` on the redis route (committed, not delivered, retried);
 * - manual nats: the route pinned to nats by hand (what `kubectl dtx broker
 *   recover` writes) while NATS is still down: publishes fail on nats.
 *
 * The scrapes become timelines (1m steps, test/support/chart.ts `timeline`):
 * counters climb from one scrape's values to the next over a phase, gauges
 * take the next scrape's values at once. Expected: nothing at all fires while
 * healthy; KubetxBrokerFailedOver once the route has been redis for
 * prometheusRule.brokerFailedOverFor (the default, and a rendered 45m), not
 * before and not on a nats route; KubetxBrokerUndeliverable while unavailable
 * publishes climb with no ok ones (on redis, and on the manual nats route),
 * never while failed over but delivering, nor on a quiet route.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { RouteSwitch } from '../../src/brokers/route-switch.js';
import { AlertRules, metricNames, MONITORED, parseExposition, promtoolPath, templateChart, timeline, type Sample } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const STREAM = 'KUBETX_MON';
const BROKER_ALERTS = ['KubetxBrokerFailedOver', 'KubetxBrokerUndeliverable'];
const kc = kubeConfig();
const txs = transactions(kc);

let ns: string;
let nats: NatsServer | undefined;
let redis: RedisServer | undefined;
let operator: OperatorProcess | undefined;
let alerts: AlertRules;

const scrape: { healthy?: Sample[]; failedOver?: Sample[]; undeliverable?: Sample[]; manualNats?: Sample[] } = {};

let seq = 0;
/** A Notify with one broker branch, retried every second (the floor) for ever while it fails. */
function notification(): DistributedTransaction {
  const n = seq++;
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name: `notify-${n}`, namespace: ns },
    spec: { mode: 'Notify', payload: { n }, notify: { schedule: ['1s'], maxAttempts: 0 }, branches: [{ name: 'audit', broker: { subject: 'audit', key: `k${n % 2}` } }] },
  } as DistributedTransaction;
}

/** Creates `count` notifications and waits until each is Delivered through `route`. */
async function deliver(count: number, route: 'nats' | 'redis'): Promise<void> {
  const created = await Promise.all(Array.from({ length: count }, () => txs.create(notification())));
  for (const t of created) {
    const done = await txs.untilPhase(ns, t.metadata.name, ['Delivered'], 60_000);
    expect(done.status?.branches?.[0]?.delivery?.route, t.metadata.name).toBe(route);
  }
}

/** The sum of a scrape's samples of `name` whose labels include `labels`. */
const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
const publishes = (samples: Sample[], route: string, result: string) => value(samples, 'kubetx_broker_publish_total', { route, result });
const succeeded = (samples: Sample[]) => ['ok', 'duplicate'].reduce((a, r) => a + value(samples, 'kubetx_broker_publish_total', { result: r }), 0);

/** Waits until `count` more publishes failed unavailable on `route` than in `since`, and scrapes. */
async function unavailableSince(since: Sample[], route: 'nats' | 'redis', count: number): Promise<Sample[]> {
  const was = publishes(since, route, 'unavailable');
  return eventually(`${count} more unavailable publishes on ${route}`, async () => {
    const now = parseExposition(await operator!.metrics());
    return publishes(now, route, 'unavailable') >= was + count ? now : undefined;
  }, 60_000);
}

beforeAll(async () => {
  promtoolPath(); // fail early, naming hack/promtool.sh
  alerts = new AlertRules(mkdtempSync(join(tmpdir(), 'kubetx-promtool-broker-')));
  ns = await freshNamespace(kc, 'mon-broker');
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  const nc = await connect({ servers: nats.url });
  await (await jetstreamManager(nc)).streams.add({ name: STREAM, subjects: [`kubetx.${ns}.>`], storage: StorageType.File, duplicate_window: 120e9 });
  await nc.close();
  operator = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespaces: [ns],
    args: [
      '--nats-url', nats.url,
      '--redis-url', redis.url,
      '--nats-stream', STREAM,
      '--broker-failure-threshold', '2',
      '--broker-publish-timeout', '1s',
      '--broker-probe-interval', '250ms',
      '--leader-election-namespace', ns,
    ],
  });
  await operator.waitForLog((l) => l.msg === 'broker delivery started');

  // Healthy: notifications delivered through NATS.
  await deliver(3, 'nats');
  scrape.healthy = parseExposition(await operator.metrics());

  // NATS crashes: the failing publishes flip the route to redis, and the notifications go through Redis.
  await nats.kill();
  await deliver(3, 'redis');
  scrape.failedOver = await eventually('the route gauge at redis', async () => {
    const now = parseExposition(await operator!.metrics());
    return value(now, 'kubetx_broker_route', { route: 'redis' }) === 1 ? now : undefined;
  });

  // Redis crashes too: a notification stays committed-but-undelivered, retried every second.
  await redis.kill();
  const stuck = await txs.create(notification());
  scrape.undeliverable = await unavailableSince(scrape.failedOver, 'redis', 5);
  const t = await txs.get(ns, stuck.metadata.name);
  expect(t.status?.phase).toBe('Notifying');
  expect(t.status?.branches?.[0]).toMatchObject({ state: 'Delivering', lastError: expect.stringMatching(/^BrokerUnavailable/) });

  // A human pins the route to nats (the write of `kubectl dtx broker recover`) while NATS is still down.
  const res = await new RouteSwitch({ kubeConfig: kc, namespace: ns, identity: 'chart-monitoring-broker.test.ts' })
    .flip('nats', { reason: 'ManualRecover', message: 'kubectl dtx broker recover', manual: true });
  expect(res.flipped).toBe(true);
  await eventually('the route gauge at nats', async () => (counterValue(await operator!.metrics(), 'kubetx_broker_route', { route: 'nats' }) === 1 ? true : undefined));
  scrape.manualNats = await unavailableSince(scrape.undeliverable, 'nats', 5);
  await operator.kill();
  operator = undefined;
}, 180_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await Promise.all([nats?.stop(), redis?.stop()]);
});

const failedOver = { KubetxBrokerFailedOver: [{ severity: 'warning', ...MONITORED }] };
const undeliverable = { KubetxBrokerUndeliverable: [{ severity: 'critical', ...MONITORED }] };
/** The broker alerts only: the other alerts' answers to these scrapes (a Notify retrying for ever) are chart-monitoring.test.ts's business. */
const brokerAt = (minute: number, firing: Record<string, Array<Record<string, string>>>) => alerts.expectAt(minute, firing, BROKER_ALERTS);

/**
 * healthy 0..29 → NATS down, failed over and delivering 30..59 → Redis down
 * too, unavailable publishes climbing 60..89 → nothing published 90..119.
 */
const outage = () =>
  timeline([
    { scrape: scrape.healthy!, minutes: 30 },
    { scrape: scrape.failedOver!, minutes: 30, climb: true },
    { scrape: scrape.undeliverable!, minutes: 30, climb: true },
    { scrape: scrape.undeliverable!, minutes: 30 },
  ], 'kubetx-0');

describe('broker alerts against the real /metrics (promtool)', () => {
  it('the scrapes show what was caused: delivery via nats, then via redis after a flip, then unavailable on redis, then on a manual nats route', () => {
    const { healthy, failedOver: over, undeliverable: down, manualNats } = scrape as Required<typeof scrape>;
    expect(publishes(healthy, 'nats', 'ok')).toBe(3);
    expect(value(healthy, 'kubetx_broker_route', { route: 'nats' })).toBe(1);
    expect(value(healthy, 'kubetx_broker_publish_total', { result: 'unavailable' })).toBe(0);
    expect(value(over, 'kubetx_broker_route', { route: 'redis' })).toBe(1);
    expect(value(over, 'kubetx_broker_flips_total', { from: 'nats', to: 'redis' })).toBe(1);
    expect(publishes(over, 'nats', 'unavailable')).toBeGreaterThanOrEqual(2);
    expect(publishes(over, 'redis', 'ok')).toBe(3);
    // Between the later scrapes nothing was published successfully: the timelines' ok counters stay flat.
    expect(succeeded(down)).toBe(succeeded(over));
    expect(succeeded(manualNats)).toBe(succeeded(over));
    expect(value(down, 'kubetx_broker_route', { route: 'redis' })).toBe(1);
    expect(value(manualNats, 'kubetx_broker_route', { route: 'nats' })).toBe(1);
  });

  it('every metric a broker alert names is in the scrapes', () => {
    const have = new Set(Object.values(scrape).flatMap((x) => x.map((s) => s.name)));
    for (const r of alerts.all.filter((x) => BROKER_ALERTS.includes(x.alert!))) {
      const names = metricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(have.has(n), `${r.alert}: ${n} is not exported by the operator`).toBe(true);
    }
  });

  it('healthy: nothing fires; failed over: KubetxBrokerFailedOver after brokerFailedOverFor (15m), not Undeliverable; both down: Undeliverable; quiet: FailedOver alone', () => {
    const r = alerts.test([
      {
        name: 'healthy, NATS down (delivering via Redis), Redis down too, then nothing published',
        interval: '1m',
        input_series: outage(),
        alert_rule_test: [
          ...alerts.expectAt(10, {}),
          ...alerts.expectAt(29, {}),
          ...brokerAt(40, {}), // redis for 10m < 15m
          ...brokerAt(50, failedOver),
          ...brokerAt(59, failedOver), // unavailable NATS publishes climbed too, but so did ok ones on Redis
          ...brokerAt(62, failedOver), // Undeliverable: ok publishes in the last 5m, then pending for 5m
          ...brokerAt(80, { ...failedOver, ...undeliverable }),
          ...brokerAt(89, { ...failedOver, ...undeliverable }),
          ...brokerAt(110, failedOver), // no publishes at all: not undeliverable
        ],
      },
    ]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('brokerFailedOverFor is the alert\'s for: rendered 45m, the same outage fires it 45m after the flip, not 40m', () => {
    alerts.render({ brokerFailedOverFor: '45m' });
    try {
      const r = alerts.test([
        {
          name: 'the same outage, brokerFailedOverFor 45m',
          interval: '1m',
          input_series: outage(),
          alert_rule_test: [...brokerAt(50, {}), ...brokerAt(70, undeliverable), ...brokerAt(80, { ...failedOver, ...undeliverable })],
        },
      ]);
      expect(r.status, r.out).toBe(0);
    } finally {
      alerts.render();
    }
  });

  it('a manual nats route while NATS is down: Undeliverable fires, FailedOver does not (redis for 10m, then nats)', () => {
    const r = alerts.test([
      {
        name: 'both down on redis for 10m, then the route pinned to nats, NATS still down',
        interval: '1m',
        input_series: timeline([
          { scrape: scrape.undeliverable!, minutes: 10 },
          { scrape: scrape.manualNats!, minutes: 20, climb: true },
        ], 'kubetx-0'),
        alert_rule_test: [...brokerAt(5, {}), ...brokerAt(13, {}), ...brokerAt(25, undeliverable)],
      },
    ]);
    expect(r.status, r.out).toBe(0);
  });

  it('values.schema.json: brokerFailedOverFor must be a Prometheus duration above zero', () => {
    const render = (brokerFailedOverFor: string) => templateChart({ release: 'kubetx', namespace: MONITORED.namespace, values: { prometheusRule: { enabled: true, brokerFailedOverFor } } });
    for (const ok of ['90s', '1h30m']) expect(render(ok).status, ok).toBe(0);
    for (const bad of ['0m', '1.5h', '10us', 'soon']) expect(render(bad).stderr, bad).toMatch(/brokerFailedOverFor/);
  });
});

/**
 * The shared switch: which route committed messages take, `nats` or `redis`,
 * agreed by every operator replica through one ConfigMap in the operator's
 * namespace (no ZooKeeper on Kubernetes):
 *
 *   data:
 *     route: redis                    # nats | redis
 *     reason: NatsUnavailable         # CamelCase, why it was set
 *     message: 3 consecutive publish failures in 12 ms (…)
 *     since: 2025-01-01T12:00:00.000Z # RFC 3339, when route took this value
 *     changedBy: kubetx-0             # replica identity, or a person
 *     manual: "true"                  # optional: health checks leave it alone
 *
 * Not a Lease: a Lease says who holds something and expires when the holder
 * stops renewing; a route must stay where it was put when every replica is
 * down, and a human must be able to read and `kubectl edit` it.
 *
 * Every write carries the resourceVersion it read. A 409 means another writer
 * got there first: re-read, and if the route changed the other writer's
 * decision stands (we do not flip it back). Every replica re-reads every
 * `pollMs`, so a flip by another replica or by a human takes effect within
 * pollMs. A flip with `manual: true` sets the manual flag; automatic flips are
 * refused while it is set, until `clearManual()` (or a human) removes it.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorText } from '../controller/status-writer.js';

export type Route = 'nats' | 'redis';

export interface RouteState {
  route: Route;
  reason: string;
  message: string;
  /** RFC 3339. */
  since: string;
  changedBy: string;
  manual: boolean;
  resourceVersion: string;
  /** Set when the ConfigMap's `route` is neither nats nor redis: the last valid route is kept. */
  problem?: string;
}

export interface RouteSwitchOptions {
  kubeConfig: k8s.KubeConfig;
  /** The operator's namespace. */
  namespace: string;
  /** @default "kubetx-broker-route" */
  name?: string;
  /** Written to changedBy. */
  identity: string;
  /** How often the ConfigMap is re-read. @default 1000 */
  pollMs?: number;
  /** The route written when the ConfigMap does not exist yet. @default "nats" */
  initialRoute?: Route;
  logger?: Logger;
}

export interface FlipOptions {
  /** CamelCase reason. */
  reason: string;
  message?: string;
  /** A human's flip: sets `manual: "true"` and is not refused by it. @default false */
  manual?: boolean;
  /** Only flip if the route is still this one (the route the caller based its decision on). */
  expect?: Route;
  /** Written to changedBy instead of the identity (e.g. the user of `kubectl dtx broker failover`). */
  by?: string;
}

export interface FlipResult {
  /** True when this call changed the route. */
  flipped: boolean;
  /** The state after the call: ours, or the other writer's that stands. */
  state: RouteState;
  /** Why nothing changed: Unchanged (already there), Manual (an automatic flip while manual is set), Superseded (another writer changed it). */
  refused?: 'Unchanged' | 'Manual' | 'Superseded';
}

export const DEFAULT_ROUTE_CONFIGMAP = 'kubetx-broker-route';

type Listener = (state: RouteState, previous: RouteState) => void;

export class RouteSwitch {
  readonly name: string;
  private readonly api: k8s.CoreV1Api;
  private readonly pollMs: number;
  private state?: RouteState;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly listeners = new Set<Listener>();
  /** Requests issued / the latest whose answer was applied: an answer older than the applied one is ignored. */
  private issued = 0;
  private applied = 0;

  constructor(private readonly opts: RouteSwitchOptions) {
    this.name = opts.name ?? DEFAULT_ROUTE_CONFIGMAP;
    this.pollMs = opts.pollMs ?? 1000;
    this.api = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  /** Reads (creating it with the initial route if missing) and starts polling. */
  async start(): Promise<RouteState> {
    this.stopped = false;
    if (this.timer) clearTimeout(this.timer);
    const state = await this.refresh();
    this.schedule();
    return state;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The last state read; throws before start(). */
  current(): RouteState {
    if (!this.state) throw new Error('RouteSwitch: current() before start()');
    return this.state;
  }

  /** Called on every change seen (own flips and others'), with the state before. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the ConfigMap now (creating it if missing) and updates current(). */
  async refresh(): Promise<RouteState> {
    const seq = ++this.issued;
    return this.observe(await this.readOrCreate(), seq);
  }

  async flip(to: Route, opts: FlipOptions): Promise<FlipResult> {
    const manual = opts.manual ?? false;
    for (let attempt = 1; ; attempt++) {
      const seq = ++this.issued;
      const cm = await this.readOrCreate();
      const cur = this.observe(cm, seq);
      if (opts.expect && cur.route !== opts.expect) return { flipped: false, state: cur, refused: 'Superseded' };
      if (cur.manual && !manual) return { flipped: false, state: cur, refused: 'Manual' };
      if (cur.route === to && cur.manual === manual && !cur.problem) return { flipped: false, state: cur, refused: 'Unchanged' };
      const data: Record<string, string> = {
        ...(cm.data ?? {}),
        route: to,
        reason: opts.reason,
        message: opts.message ?? '',
        since: cur.route === to && !cur.problem ? cur.since : new Date().toISOString(),
        changedBy: opts.by ?? this.opts.identity,
      };
      if (manual) data.manual = 'true';
      else delete data.manual;
      try {
        const wseq = ++this.issued;
        const written = await this.api.replaceNamespacedConfigMap({ name: this.name, namespace: this.opts.namespace, body: { ...cm, data } });
        const state = this.observe(written, wseq);
        this.opts.logger?.info({ route: to, reason: opts.reason, manual }, 'broker route flipped');
        return { flipped: true, state };
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
        // Lost the race: re-read; if the route moved, the other writer's decision stands (checked at the top via expect/route).
        const after = await this.refresh();
        if (after.route !== cur.route) return { flipped: false, state: after, refused: 'Superseded' };
      }
    }
  }

  /** Removes the manual flag so health checks may flip the route again; keeps the route. */
  async clearManual(reason = 'ManualCleared', by?: string): Promise<RouteState> {
    for (let attempt = 1; ; attempt++) {
      const seq = ++this.issued;
      const cm = await this.readOrCreate();
      const cur = this.observe(cm, seq);
      if (!cur.manual) return cur;
      const data: Record<string, string> = { ...(cm.data ?? {}), reason, changedBy: by ?? this.opts.identity };
      delete data.manual;
      try {
        const wseq = ++this.issued;
        return this.observe(await this.api.replaceNamespacedConfigMap({ name: this.name, namespace: this.opts.namespace, body: { ...cm, data } }), wseq);
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
      }
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.refresh()
        .catch((err: unknown) => this.opts.logger?.warn({ err: errorText(err) }, 'could not read the broker route; keeping the last one'))
        .finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  private async readOrCreate(): Promise<k8s.V1ConfigMap> {
    const { namespace } = this.opts;
    try {
      return await this.api.readNamespacedConfigMap({ name: this.name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    try {
      return await this.api.createNamespacedConfigMap({
        namespace,
        body: {
          metadata: { name: this.name, namespace, labels: { 'app.kubernetes.io/part-of': 'kubetx', 'app.kubernetes.io/component': 'broker-route' } },
          data: { route: this.opts.initialRoute ?? 'nats', reason: 'Initial', message: '', since: new Date().toISOString(), changedBy: this.opts.identity },
        },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err; // another replica created it first
      return await this.api.readNamespacedConfigMap({ name: this.name, namespace });
    }
  }

  /** Turns a ConfigMap into a state, stores it, tells the listeners if it changed. */
  private observe(cm: k8s.V1ConfigMap, seq: number): RouteState {
    const previous = this.state;
    const next = routeStateOf(cm, previous?.route ?? this.opts.initialRoute ?? 'nats');
    const valid = next.problem === undefined;
    // An older copy of the ConfigMap than the one applied (a poll that read it before a flip's
    // write, answered after it) is ignored. resourceVersions of one object are etcd revisions;
    // where they are not numbers, the request order decides.
    const older = previous ? compareVersions(next.resourceVersion, previous.resourceVersion) : undefined;
    if (previous && (older !== undefined ? older < 0 : seq < this.applied)) return previous;
    this.applied = Math.max(this.applied, seq);
    this.state = next;
    if (!valid && previous?.problem !== next.problem) this.opts.logger?.warn({ configMap: this.name, problem: next.problem }, 'invalid broker route; keeping the last one');
    if (previous && (previous.route !== next.route || previous.manual !== next.manual)) {
      for (const l of this.listeners) {
        try {
          l(next, previous);
        } catch (err) {
          this.opts.logger?.error({ err: errorText(err) }, 'broker route listener failed');
        }
      }
    }
    return next;
  }
}

/**
 * The route ConfigMap as a state. A `route` that is neither nats nor redis
 * gives `fallback` (a replica keeps the route it had) and says so in `problem`.
 */
export function routeStateOf(cm: k8s.V1ConfigMap, fallback: Route): RouteState {
  const d = cm.data ?? {};
  const raw = (d.route ?? '').trim().toLowerCase();
  const valid = raw === 'nats' || raw === 'redis';
  return {
    route: valid ? (raw as Route) : fallback,
    reason: d.reason ?? '',
    message: d.message ?? '',
    since: d.since ?? '',
    changedBy: d.changedBy ?? '',
    manual: (d.manual ?? '').trim().toLowerCase() === 'true',
    resourceVersion: cm.metadata?.resourceVersion ?? '',
    ...(valid ? {} : { problem: `route "${d.route ?? ''}" is neither nats nor redis` }),
  };
}

/** -1, 0 or 1 when both resourceVersions are decimal numbers; undefined when either is not. */
function compareVersions(a: string, b: string): number | undefined {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

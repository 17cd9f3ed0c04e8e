/**
 * kubectl dtx broker status|failover|recover: the human's hand on the shared
 * broker route (src/brokers/route-switch.ts), the ConfigMap in the operator's
 * namespace that says whether committed Message/Notify branches with a broker
 * destination go to NATS JetStream or to the sharded Redis queues.
 *
 * - `status` reads the ConfigMap and never creates it: missing means broker
 *   delivery has not run yet, and the operator will start on nats.
 * - `failover` is a manual flip to redis (`manual: "true"`): health checks
 *   leave it there, NATS healthy or not, until a human says otherwise.
 * - `recover --auto` is the safe way back: it only clears the manual flag
 *   (RouteSwitch.clearManual), and the operator switches to nats itself once
 *   NATS has been healthy for its recovery period and the Redis queues are
 *   drained and fenced (src/brokers/router.ts). The plugin cannot see Redis,
 *   so it cannot make that check.
 * - `recover` without --auto forces nats now, manual. Entries still waiting
 *   in Redis are then consumed after newer messages of the same key that went
 *   through NATS: per-key order can break. It says so every time it moves the
 *   route, and the usage line says so too. While it is manual, NATS failures
 *   do not fail over to Redis (messages stay committed-but-undelivered and
 *   are retried) until `recover --auto` or `failover`.
 *
 * Every write goes through RouteSwitch (resourceVersion preconditions, 409 →
 * re-read), written as the user the API server knows (SelfSubjectReview).
 * A 403 is printed as kubectl prints it, followed by which configmaps
 * permissions the verb needs and which of them this user lacks
 * (SelfSubjectAccessReview).
 */
import * as k8s from '@kubernetes/client-node';
import { DEFAULT_ROUTE_CONFIGMAP, RouteSwitch, routeStateOf, type Route, type RouteState } from '../../brokers/route-switch.js';
import { UsageError, type Ctx, type Verb } from '../context.js';
import { EXIT, formatError } from '../errors.js';
import { age, serialize, table } from '../output.js';

/** Flags only this verb reads (parseArgs options, merged into the plugin's FLAGS). */
export const BROKER_FLAGS = {
  /** The operator's broker route ConfigMap. */
  'route-configmap': { type: 'string' },
  /** recover: clear the manual flag only, let the operator switch back. */
  auto: { type: 'boolean' },
} as const;

interface BrokerFlags {
  'route-configmap'?: string;
  auto?: boolean;
}

export const BROKER_SUBCOMMANDS = ['status', 'failover', 'recover'] as const;
type Subcommand = (typeof BROKER_SUBCOMMANDS)[number];

const COMMON = '[-n OPERATOR-NAMESPACE] [--route-configmap kubetx-broker-route] [-o json|yaml]';

export const broker: Verb = {
  // One line per subcommand (the plugin's usage prints "kubectl dtx " before the first).
  usage: [
    `broker status ${COMMON}`,
    `  kubectl dtx broker failover [--reason TEXT]          (manual: stays on redis until recover)`,
    `  kubectl dtx broker recover --auto                    (safe: the operator returns to nats once NATS is healthy and Redis is drained)`,
    `  kubectl dtx broker recover [--reason TEXT]           (forces nats now: breaks per-key order if Redis still holds messages)`,
  ].join('\n'),
  async run(ctx) {
    const [sub, ...extra] = ctx.args;
    if (!sub) throw new UsageError(`broker: a subcommand is required (${BROKER_SUBCOMMANDS.join(', ')})`);
    if (!(BROKER_SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`broker: unknown subcommand "${sub}" (${BROKER_SUBCOMMANDS.join(', ')})`);
    if (extra.length) throw new UsageError(`broker ${sub}: unexpected arguments: ${extra.join(' ')}`);
    const f = ctx.flags as typeof ctx.flags & BrokerFlags;
    const output = ctx.flags.output ?? '';
    if (!['', 'json', 'yaml'].includes(output)) throw new UsageError(`broker ${sub}: unknown output format "${output}" (json, yaml)`);
    if (f.auto && sub !== 'recover') throw new UsageError(`broker ${sub}: --auto is for recover only`);
    if (f.auto && ctx.flags.reason !== undefined) throw new UsageError('broker recover --auto: --reason is not recorded (clearing the manual flag keeps the route and its message); leave it out');
    const b: Broker = { ctx, sub: sub as Subcommand, name: f['route-configmap'] || DEFAULT_ROUTE_CONFIGMAP, format: output as '' | 'json' | 'yaml' };
    try {
      if (b.sub === 'status') return await status(b);
      if (b.sub === 'failover') return await flip(b, 'redis');
      return f.auto ? await recoverAuto(b) : await flip(b, 'nats');
    } catch (err) {
      if ((err as { code?: unknown }).code === 403) return forbidden(b, err);
      throw err;
    }
  },
};

interface Broker {
  ctx: Ctx;
  sub: Subcommand;
  /** The ConfigMap's name. */
  name: string;
  format: '' | 'json' | 'yaml';
}

/** What the ConfigMap says, read without creating it (RouteSwitch creates on every read). */
interface Seen {
  exists: boolean;
  /** As written; a value other than nats/redis is reported as a problem. */
  route: string;
  manual: boolean;
  reason: string;
  message: string;
  since: string;
  changedBy: string;
  problem?: string;
}

const NOT_THERE: Seen = { exists: false, route: 'nats', manual: false, reason: '', message: '', since: '', changedBy: '' };

function seen(s: RouteState): Seen {
  return { exists: true, route: s.route, manual: s.manual, reason: s.reason, message: s.message, since: s.since, changedBy: s.changedBy, ...(s.problem ? { problem: s.problem } : {}) };
}

/** The ConfigMap as RouteSwitch reads it (its `observe`), or NOT_THERE on 404. */
async function read(b: Broker): Promise<Seen> {
  let cm: k8s.V1ConfigMap;
  try {
    cm = await b.ctx.kc.makeApiClient(k8s.CoreV1Api).readNamespacedConfigMap({ name: b.name, namespace: b.ctx.namespace });
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return NOT_THERE;
    throw err;
  }
  const s = routeStateOf(cm, 'nats');
  // An invalid route is shown as written, with the problem.
  return s.problem ? { ...seen(s), route: cm.data?.route ?? '', problem: `${s.problem}: every replica keeps the route it had last` } : seen(s);
}

/** -o json|yaml: one object; a field the ConfigMap does not hold is null. */
function view(b: Broker, s: Seen, extra: Record<string, unknown> = {}) {
  return {
    namespace: b.ctx.namespace,
    configMap: b.name,
    exists: s.exists,
    route: s.route,
    manual: s.manual,
    reason: s.reason || null,
    message: s.message || null,
    since: s.since || null,
    changedBy: s.changedBy || null,
    ...(s.problem ? { problem: s.problem } : {}),
    ...extra,
  };
}

const where = (b: Broker) => `${b.ctx.namespace}/${b.name}`;
const manualText = (s: Seen) => (s.manual ? 'manual' : 'automatic');

function statusTable(b: Broker, s: Seen): string {
  const now = b.ctx.now();
  return table([
    ['ROUTE', 'MANUAL', 'REASON', 'SINCE', 'CHANGED BY', 'MESSAGE'],
    [s.route || '<none>', String(s.manual), s.reason || '<none>', s.since ? age(s.since, now) : '<unknown>', s.changedBy || '<none>', s.message],
  ]).join('\n');
}

async function status(b: Broker): Promise<number> {
  const s = await read(b);
  if (b.format) {
    b.ctx.out(serialize(view(b, s), b.format));
    return EXIT.ok;
  }
  if (!s.exists) {
    b.ctx.out(
      `Broker delivery has not run yet: no ConfigMap ${where(b)}. The route is nats by default (the operator creates the ConfigMap when it first delivers to a broker). -n names the operator's namespace, --route-configmap its route ConfigMap.`,
    );
    return EXIT.ok;
  }
  b.ctx.out(statusTable(b, s));
  if (s.problem) b.ctx.err(`warning: ${s.problem}`);
  return EXIT.ok;
}

const ORDER_WARNING =
  'warning: the route was forced to nats while the Redis queues may still hold messages: those are consumed after newer messages of the same key sent through NATS, so per-key order can break (the plugin cannot see Redis to check). The safe way back is `kubectl dtx broker recover --auto`: the operator switches to nats once NATS has been healthy for its recovery period and Redis is drained.';
const PINNED_WARNING =
  'warning: the route is pinned to nats (manual): if NATS fails, the operator does not fail over to Redis, messages stay committed-but-undelivered and are retried, until `kubectl dtx broker recover --auto` (back to automatic) or `kubectl dtx broker failover`.';

/** failover (to redis) and recover without --auto (to nats): a manual flip, written as the user. */
async function flip(b: Broker, to: Route): Promise<number> {
  const by = await whoAmI(b.ctx);
  const before = await read(b);
  const rs = new RouteSwitch({ kubeConfig: b.ctx.kc, namespace: b.ctx.namespace, name: b.name, identity: by });
  const reason = to === 'redis' ? 'ManualFailover' : 'ManualRecover';
  const message = b.ctx.flags.reason ?? `kubectl dtx broker ${b.sub}`;
  // Superseded: another writer moved the route between our read and our write. A human's request still stands: try again.
  let res = await rs.flip(to, { reason, message, manual: true, by });
  for (let i = 0; res.refused === 'Superseded' && i < 3; i++) res = await rs.flip(to, { reason, message, manual: true, by });
  const after = seen(res.state);
  if (res.refused === 'Superseded') {
    b.ctx.err(`error: another writer kept changing ${where(b)} (now ${after.route}, ${manualText(after)}, by ${after.changedBy || '?'}); run kubectl dtx broker status and try again`);
    return EXIT.error;
  }
  const changed = res.flipped;
  if (b.format) b.ctx.out(serialize(view(b, after, { changed, previous: view(b, before) }), b.format));
  else if (!changed) b.ctx.out(`The broker route ${where(b)} is already ${after.route} and manual (${after.route} for ${age(after.since, b.ctx.now())}; last changed by ${after.changedBy || '?'}, ${after.reason}): nothing changed.`);
  else {
    b.ctx.out(`The broker route ${where(b)}: ${describeChange(before, after)} (${reason}, by ${by}). Every operator replica follows within its poll interval.`);
    if (to === 'redis') b.ctx.out('Health checks leave it on redis until `kubectl dtx broker recover --auto` (the operator switches back when NATS is healthy and Redis is drained) or `kubectl dtx broker recover`.');
  }
  if (changed && to === 'nats') {
    if (before.exists && before.route !== 'nats') b.ctx.err(ORDER_WARNING);
    b.ctx.err(PINNED_WARNING);
  }
  return EXIT.ok;
}

/** E.g. "route redis → nats, automatic → manual"; a ConfigMap that did not exist reads as the default route. */
function describeChange(before: Seen, after: Seen): string {
  const parts: string[] = [];
  const from = before.exists ? before.route : 'nats (default, no ConfigMap yet)';
  parts.push(before.route !== after.route || !before.exists ? `route ${from} → ${after.route}` : `route stays ${after.route}`);
  if (before.manual !== after.manual) parts.push(`${manualText(before)} → ${manualText(after)}`);
  return parts.join(', ');
}

/** recover --auto: clear the manual flag, keep the route; the operator decides when to switch back. */
async function recoverAuto(b: Broker): Promise<number> {
  const before = await read(b);
  let after = before;
  if (before.exists && before.manual) {
    const by = await whoAmI(b.ctx);
    after = seen(await new RouteSwitch({ kubeConfig: b.ctx.kc, namespace: b.ctx.namespace, name: b.name, identity: by }).clearManual('ManualCleared', by));
  }
  const changed = before.manual && !after.manual;
  if (b.format) {
    b.ctx.out(serialize(view(b, after, { changed, previous: view(b, before) }), b.format));
    return EXIT.ok;
  }
  const next =
    after.route === 'redis'
      ? 'The operator switches back to nats once NATS has been healthy for its recovery period and every Redis queue is drained; follow it with `kubectl dtx broker status`.'
      : 'Health checks may fail over to redis again if NATS fails.';
  if (!before.exists) b.ctx.out(`Broker delivery has not run yet: no ConfigMap ${where(b)}; the route is nats by default and automatic: nothing changed.`);
  else if (!changed) b.ctx.out(`The broker route ${where(b)} is ${after.route} and already automatic: nothing changed. ${next}`);
  else b.ctx.out(`The broker route ${where(b)}: manual → automatic, route stays ${after.route}. ${next}`);
  return EXIT.ok;
}

/** The user as the API server knows them (written to changedBy); the kubeconfig's user name if the server cannot say. */
async function whoAmI(ctx: Ctx): Promise<string> {
  try {
    const r = await ctx.kc.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    if (r.status?.userInfo?.username) return r.status.userInfo.username;
  } catch {
    // An older server or a proxy without the API: fall through.
  }
  return ctx.kc.getCurrentUser()?.name || 'kubectl-dtx';
}

/** The configmaps verbs a subcommand needs; create only matters while the ConfigMap does not exist. */
function needed(sub: Subcommand, auto: boolean): string[] {
  if (sub === 'status') return ['get'];
  return auto ? ['get', 'update'] : ['get', 'update', 'create'];
}

/** A 403 as kubectl prints it, then the permissions needed and, as far as the server tells, those missing. */
async function forbidden(b: Broker, err: unknown): Promise<number> {
  b.ctx.err(formatError(err));
  const verbs = needed(b.sub, (b.ctx.flags as BrokerFlags).auto === true);
  const api = b.ctx.kc.makeApiClient(k8s.AuthorizationV1Api);
  const missing = await Promise.all(
    verbs.map(async (verb) => {
      const review = await api.createSelfSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          // create cannot be limited to one name by RBAC: ask without one.
          spec: { resourceAttributes: { namespace: b.ctx.namespace, verb, resource: 'configmaps', ...(verb === 'create' ? {} : { name: b.name }) } },
        },
      });
      return review.status?.allowed ? undefined : verb;
    }),
  ).then(
    (xs) => xs.filter((x): x is string => x !== undefined),
    () => undefined,
  );
  const list = (xs: string[]) => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}` : (xs[0] ?? ''));
  const need = `${list(verbs)} on configmaps "${b.name}" in namespace ${b.ctx.namespace}${verbs.includes('create') ? ' (create only while it does not exist yet)' : ''}`;
  const lacking = missing && missing.length ? `; missing: ${list(missing)}` : '';
  b.ctx.err(`error: kubectl dtx broker ${b.sub}${(b.ctx.flags as BrokerFlags).auto ? ' --auto' : ''} needs ${need}${lacking} (-n names the operator's namespace)`);
  return EXIT.error;
}

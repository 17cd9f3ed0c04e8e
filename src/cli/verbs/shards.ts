/**
 * kubectl dtx shards [-n NAMESPACE] [--prefix NAME] [-o json|yaml]
 *
 * Who holds which shard (--shards, docs/scaling.md), read from the Leases of
 * the set in the operator's namespace: a table of shards and one of replicas.
 * Ages come from the renewTime each holder wrote, so they are as good as the
 * holders' clocks; the replicas themselves judge expiry on their own clocks.
 */
import * as k8s from '@kubernetes/client-node';
import { UsageError, type Verb } from '../context.js';
import { age, serialize, table } from '../output.js';
import { LEASE_KIND_LABEL, SHARD_SET_LABEL, SHARDS_ANNOTATION } from '../../controller/sharding/shard-leases.js';

/** A renewTime as `age` takes it; a Lease that names none (never renewed) shows <none>. */
const renewedAge = (t: Date | undefined, now: Date) => (t ? age(new Date(t).toISOString(), now) : '<none>');

export const shards: Verb = {
  usage: 'shards [-n OPERATOR-NAMESPACE] [--prefix NAME] [-o json|yaml]',
  async run(ctx) {
    const output = ctx.flags.output ?? '';
    if (!['', 'json', 'yaml'].includes(output)) throw new UsageError(`shards: unknown output format "${output}" (json, yaml)`);
    const prefix = ctx.flags.prefix ?? 'kubetx-shard';
    const api = ctx.kc.makeApiClient(k8s.CoordinationV1Api);
    const leases = (await api.listNamespacedLease({ namespace: ctx.namespace, labelSelector: `${SHARD_SET_LABEL}=${prefix}` })).items;
    const index = (l: k8s.V1Lease) => Number(/-(\d+)$/.exec(l.metadata?.name ?? '')?.[1] ?? -1);
    const shardLeases = leases.filter((l) => l.metadata?.labels?.[LEASE_KIND_LABEL] === 'shard').sort((a, b) => index(a) - index(b));
    const members = leases.filter((l) => l.metadata?.labels?.[LEASE_KIND_LABEL] === 'replica').sort((a, b) => (a.spec?.holderIdentity ?? '').localeCompare(b.spec?.holderIdentity ?? ''));
    const heldBy = (identity: string | undefined) => (identity ? shardLeases.filter((l) => l.spec?.holderIdentity === identity).length : 0);
    if (output) {
      const view = {
        shards: shardLeases.map((l) => ({ shard: index(l), holder: l.spec?.holderIdentity ?? null, renewTime: l.spec?.renewTime ?? null, transitions: l.spec?.leaseTransitions ?? 0, shardCount: Number(l.metadata?.annotations?.[SHARDS_ANNOTATION] ?? 0) || null })),
        replicas: members.map((l) => ({ identity: l.spec?.holderIdentity ?? null, renewTime: l.spec?.renewTime ?? null, shards: heldBy(l.spec?.holderIdentity) })),
      };
      ctx.out(serialize(view, output as 'json' | 'yaml'));
      return 0;
    }
    if (leases.length === 0) {
      ctx.err(`No shard Leases "${prefix}-*" in ${ctx.namespace} namespace (is the operator running with --shards there? -n names the operator's namespace, --prefix its --shard-lease-prefix).`);
      return 1;
    }
    const now = ctx.now();
    ctx.out(table([['SHARD', 'HOLDER', 'RENEWED', 'TRANSITIONS'], ...shardLeases.map((l) => [String(index(l)), l.spec?.holderIdentity || '<none>', renewedAge(l.spec?.renewTime, now), String(l.spec?.leaseTransitions ?? 0)])]).join('\n'));
    ctx.out('');
    ctx.out(table([['REPLICA', 'SHARDS', 'RENEWED'], ...members.map((l) => [l.spec?.holderIdentity ?? '<none>', String(heldBy(l.spec?.holderIdentity)), renewedAge(l.spec?.renewTime, now)])]).join('\n'));
    return 0;
  },
};

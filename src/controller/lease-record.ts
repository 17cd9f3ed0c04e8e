/**
 * What leader election (leader.ts) and shard ownership (sharding/shard-leases.ts)
 * write into a coordination.k8s.io/v1 Lease, and how they judge one expired,
 * as client-go does: a record counts as expired once it has been seen
 * unchanged for its lease duration on the observer's own clock — never by
 * comparing the holder's timestamps with ours.
 */
import * as k8s from '@kubernetes/client-node';

export class LeaseObserver {
  /** Lease name → its record as last seen and when it was first seen so (local clock). */
  private readonly seen = new Map<string, { record: string; at: number }>();

  /** Whether the Lease is free (no holder) or its record has not changed for its duration. */
  expired(name: string, spec: k8s.V1LeaseSpec | undefined, now: number, defaultLeaseMs: number): boolean {
    const s = spec ?? {};
    const record = `${s.holderIdentity ?? ''}|${String(s.renewTime)}|${s.leaseDurationSeconds}`;
    let seen = this.seen.get(name);
    if (seen?.record !== record) this.seen.set(name, (seen = { record, at: now }));
    return !s.holderIdentity || now - seen.at > (s.leaseDurationSeconds ?? Math.ceil(defaultLeaseMs / 1000)) * 1000;
  }

  /** When the Lease's current record was first seen, if it was. */
  since(name: string): number | undefined {
    return this.seen.get(name)?.at;
  }

  /** Forgets Leases no longer listed. */
  keepOnly(names: ReadonlySet<string>): void {
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
  }
}

/** The spec of a Lease newly created for `identity`. */
export function createdSpec(identity: string, leaseMs: number, now: number): k8s.V1LeaseSpec {
  const t = new k8s.V1MicroTime(now);
  return { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseMs / 1000), acquireTime: t, renewTime: t, leaseTransitions: 0 };
}

/** The spec renewed by its holder, or taken over by `identity` (a transition). */
export function heldSpec(spec: k8s.V1LeaseSpec | undefined, identity: string, leaseMs: number, now: number): k8s.V1LeaseSpec {
  const s = spec ?? {};
  const t = new k8s.V1MicroTime(now);
  return {
    ...s,
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseMs / 1000),
    renewTime: t,
    ...(s.holderIdentity !== identity ? { acquireTime: t, leaseTransitions: (s.leaseTransitions ?? 0) + 1 } : {}),
  };
}

/** The spec given back: no holder and a 1 s duration, so the next candidate need not wait out the lease. */
export function releasedSpec(spec: k8s.V1LeaseSpec | undefined, now: number): k8s.V1LeaseSpec {
  return { ...spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: new k8s.V1MicroTime(now) };
}

/**
 * Which shards a replica should take or give back, as a pure function of what
 * it sees in the Leases: the live replicas (membership Leases not expired on
 * this replica's clock, itself included) and each shard's holder.
 *
 * Every replica computes the same targets from the same view: members sorted
 * by identity, the first `shards mod members` get one more, so 16 shards over
 * 3 replicas settle as 6/5/5 rather than whatever order they raced in. Which
 * shards: rendezvous (highest-random-weight) hashing of (shard, identity), so
 * a replica joining or leaving moves about shards/members shards, not all.
 *
 * Orphans — shards whose Lease still names a holder that is no longer live —
 * are taken by whoever sees them, even above its share, and handed on by the
 * next round's rebalancing. Why: when a killed replica's replacement joins
 * before the dead one's Leases expire, the survivors' shares already count
 * the newcomer, and the newcomer itself has only just started watching those
 * Leases; without this the orphans would wait a second lease duration.
 */
import { fnv1a64 } from './hash-range.js';

export interface ShardView {
  self: string;
  /** Live replica identities (self need not be listed: it always counts). */
  members: readonly string[];
  shards: number;
  /** shard → its current holder, or undefined when free or expired. */
  holders: ReadonlyMap<number, string | undefined>;
  /** Free shards whose (expired) Lease still names a holder that is not live: taken even above the share. */
  orphans?: ReadonlySet<number>;
  /** Orphans this replica took above its share: the first it gives back, so its own shards stay where they are. */
  extras?: ReadonlySet<number>;
}

export interface ShardPlan {
  /** How many shards this replica should hold. */
  target: number;
  acquire: number[];
  /** Of `acquire`, the orphans taken above the share. */
  extras: number[];
  release: number[];
}

export function fairShare(self: string, members: readonly string[], shards: number): number {
  const sorted = [...new Set([...members, self])].sort();
  const base = Math.floor(shards / sorted.length);
  return base + (sorted.indexOf(self) < shards % sorted.length ? 1 : 0);
}

/** Rendezvous weight: how much `identity` prefers `shard`. */
export function preference(shard: number, identity: string): bigint {
  return fnv1a64(`${shard}/${identity}`);
}

export function planShards(view: ShardView): ShardPlan {
  const { self, shards, holders } = view;
  const target = fairShare(self, view.members, shards);
  const byPreference = (a: number, b: number) => {
    const pa = preference(a, self);
    const pb = preference(b, self);
    return pa === pb ? a - b : pa > pb ? -1 : 1;
  };
  const held: number[] = [];
  const free: number[] = [];
  for (let s = 0; s < shards; s++) {
    const h = holders.get(s);
    if (h === self) held.push(s);
    else if (h === undefined) free.push(s);
  }
  if (held.length > target) {
    // Give back extras first, then the ones this replica prefers least; orphans are never left waiting.
    const extra = (s: number) => (view.extras?.has(s) ? 1 : 0);
    const release = held.sort((a, b) => extra(a) - extra(b) || byPreference(a, b)).slice(target);
    const orphans = free.filter((s) => view.orphans?.has(s));
    return { target, acquire: orphans, extras: orphans, release };
  }
  const share = free.sort(byPreference).slice(0, target - held.length);
  const orphans = free.filter((s) => view.orphans?.has(s) && !share.includes(s));
  return { target, acquire: [...share, ...orphans], extras: orphans, release: [] };
}

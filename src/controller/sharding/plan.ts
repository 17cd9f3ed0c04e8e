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
 */
import { fnv1a64 } from './hash-range.js';

export interface ShardView {
  self: string;
  /** Live replica identities (self need not be listed: it always counts). */
  members: readonly string[];
  shards: number;
  /** shard → its current holder, or undefined when free or expired. */
  holders: ReadonlyMap<number, string | undefined>;
}

export interface ShardPlan {
  /** How many shards this replica should hold. */
  target: number;
  acquire: number[];
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
    // Give back the ones this replica prefers least.
    return { target, acquire: [], release: held.sort(byPreference).slice(target) };
  }
  return { target, acquire: free.sort(byPreference).slice(0, target - held.length), release: [] };
}

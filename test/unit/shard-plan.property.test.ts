import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fairShare, planShards } from '../../src/controller/sharding/plan.js';

/** Runs rounds (replicas in the given order, each acting on what the last left) until nobody changes anything. */
function settle(holders: Map<number, string | undefined>, members: string[], shards: number, order: (round: number) => string[], orphans = new Set<number>()): number {
  for (let round = 0; round < 50; round++) {
    let changed = false;
    for (const self of order(round)) {
      const plan = planShards({ self, members, shards, holders, orphans });
      for (const s of plan.release) holders.set(s, undefined);
      for (const s of plan.acquire) {
        // The Lease write carries the resourceVersion read: only a free shard can be taken.
        if (holders.get(s) === undefined) {
          holders.set(s, self);
          orphans.delete(s);
        }
      }
      changed ||= plan.release.length + plan.acquire.length > 0;
    }
    if (!changed) return round;
  }
  throw new Error('did not settle in 50 rounds');
}

const countOf = (holders: Map<number, string | undefined>, who: string) => [...holders.values()].filter((h) => h === who).length;

describe('shard planning', () => {
  it('gives 16 shards over 3 replicas as 6/5/5, by identity order', () => {
    expect(['r1', 'r2', 'r3'].map((r) => fairShare(r, ['r1', 'r2', 'r3'], 16))).toEqual([6, 5, 5]);
    expect(fairShare('solo', [], 16)).toBe(16);
    expect(fairShare('r9', ['r1', 'r2', 'r3'], 2)).toBe(0); // more replicas than shards: some hold none
  });

  it('settles on every shard held and each replica at its fair share, from any start and in any order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 1, maxLength: 9 }),
        fc.array(fc.nat(), { maxLength: 64 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 10 }),
        (shards, members, start, seeds) => {
          const dead = ['gone-1', 'gone-2'];
          const holders = new Map<number, string | undefined>();
          const orphans = new Set<number>();
          // Start anywhere: shards held by live replicas beyond their share, free, or by dead ones (orphans, seen as free).
          for (let s = 0; s < shards; s++) {
            const pick = start[s] ?? 0;
            const who = [...members, ...dead, undefined][pick % (members.length + dead.length + 1)];
            holders.set(s, who && dead.includes(who) ? undefined : who);
            if (who && dead.includes(who)) orphans.add(s);
          }
          settle(
            holders,
            members,
            shards,
            (round) => {
              const seed = seeds[round % seeds.length]!;
              return [...members].sort((a, b) => ((a.charCodeAt(0) * 31 + seed) % 7) - ((b.charCodeAt(0) * 31 + seed) % 7) || a.localeCompare(b));
            },
            orphans,
          );
          for (let s = 0; s < shards; s++) expect(members).toContain(holders.get(s));
          for (const m of members) expect(countOf(holders, m)).toBe(fairShare(m, members, shards));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('moves about shards/replicas shards when a replica joins, not the whole assignment', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 128 }), fc.integer({ min: 1, max: 8 }), (shards, n) => {
        const members = Array.from({ length: n }, (_, i) => `r${i}`);
        const holders = new Map<number, string | undefined>();
        settle(holders, members, shards, () => members);
        const before = new Map(holders);
        const joined = [...members, `r${n}`];
        settle(holders, joined, shards, () => joined);
        const moved = [...holders].filter(([s, h]) => before.get(s) !== h).length;
        // The newcomer's share, plus at most one per replica whose share shrank by one more than it had to (the +1 goes by identity order).
        expect(moved).toBeLessThanOrEqual(fairShare(`r${n}`, joined, shards) + n);
        expect(countOf(holders, `r${n}`)).toBe(fairShare(`r${n}`, joined, shards));
      }),
      { numRuns: 300 },
    );
  });

  it('gives back the shards it prefers least, and never takes a shard someone live holds', () => {
    const holders = new Map<number, string | undefined>(Array.from({ length: 8 }, (_, s) => [s, s < 6 ? 'a' : 'b']));
    const plan = planShards({ self: 'a', members: ['a', 'b'], shards: 8, holders });
    expect(plan.target).toBe(4);
    expect(plan.release).toHaveLength(2);
    expect(plan.acquire).toEqual([]);
    const planB = planShards({ self: 'b', members: ['a', 'b'], shards: 8, holders });
    expect(planB).toEqual({ target: 4, acquire: [], extras: [], release: [] });
  });

  it("takes a dead replica's shards at once even above its share, and hands the extra on to a newcomer", () => {
    // r2 died holding 0..4; r4 (its replacement) joined before r2's Leases expired, so shares count r4 already.
    const holders = new Map<number, string | undefined>(Array.from({ length: 16 }, (_, s) => [s, s < 5 ? undefined : s < 11 ? 'r1' : 'r3']));
    const orphans = new Set([0, 1, 2, 3, 4]);
    const members = ['r1', 'r3', 'r4'];
    const r1 = planShards({ self: 'r1', members, shards: 16, holders, orphans });
    expect(r1.target).toBe(6);
    expect(r1.acquire.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]); // none left waiting for r4 to see them expire
    expect(r1.extras.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]); // all above its share of 6
    for (const s of r1.acquire) holders.set(s, 'r1');
    orphans.clear();
    // It gives back exactly those extras, not shards it held before.
    const back = planShards({ self: 'r1', members, shards: 16, holders, extras: new Set(r1.extras) });
    expect(back.release.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    // Next rounds: r1 gives back its extras, r4 takes them, nobody is over or under.
    settle(holders, members, 16, () => ['r1', 'r4', 'r3']);
    expect(members.map((m) => countOf(holders, m))).toEqual(members.map((m) => fairShare(m, members, 16)));
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fnv1a64, rangeStart, shardOfHash, shardOfUid, shardSelector } from '../../src/controller/sharding/hash-range.js';

/** kube-apiserver's own matching (k8s.io/apimachinery/pkg/sharding/selector.go): hex strings, shorter is smaller. */
const hexLess = (a: string, b: string) => (a.length !== b.length ? a.length < b.length : a < b);
function serverMatches(selector: string, hash: bigint): boolean {
  const h = `0x${hash.toString(16).padStart(16, '0')}`;
  const ranges = [...selector.matchAll(/shardRange\(object\.metadata\.uid, '(0x[0-9a-f]+)', '(0x[0-9a-f]+)'\)/g)];
  expect(ranges.map((r) => r[0]).join(' || ')).toBe(selector);
  return ranges.some(([, start, end]) => !hexLess(h, start!) && hexLess(h, end!));
}

describe('the shard hash space', () => {
  it('hashes exactly as Go hash/fnv New64a, which the API server uses', () => {
    // Values printed by Go: h := fnv.New64a(); h.Write([]byte(s)); fmt.Printf("%016x", h.Sum64()).
    const fromGo: Array<[string, string]> = [
      ['', 'cbf29ce484222325'],
      ['a', 'af63dc4c8601ec8c'],
      ['test-uid-123', 'd0ba679834556c0b'],
      ['5f0c7a2e-1b7d-4c1e-9a55-3a0b1d2c3e4f', 'bab0477cba653377'],
      ['ü€', '4f5fe99b9ad362e6'],
    ];
    for (const [value, hex] of fromGo) expect(fnv1a64(value).toString(16).padStart(16, '0'), value).toBe(hex);
  });

  it('writes selectors the server parses: 16 hex digits, the last range ending at 2^64', () => {
    expect(shardSelector([0], 1)).toBe("shardRange(object.metadata.uid, '0x0000000000000000', '0x10000000000000000')");
    expect(shardSelector([0], 2)).toBe("shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')");
    expect(shardSelector([15], 16)).toBe("shardRange(object.metadata.uid, '0xf000000000000000', '0x10000000000000000')");
    // Adjacent shards merge; others are ORed.
    expect(shardSelector([3, 1, 2, 7], 16)).toBe(
      "shardRange(object.metadata.uid, '0x1000000000000000', '0x4000000000000000') || shardRange(object.metadata.uid, '0x7000000000000000', '0x8000000000000000')",
    );
  });

  it('puts every hash in exactly one shard, the one whose selector the server matches it with', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 1, max: 256 }), (hash, shards) => {
        const shard = shardOfHash(hash, shards);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(shards);
        expect(hash >= rangeStart(shard, shards) && hash < rangeStart(shard + 1, shards)).toBe(true);
        expect(serverMatches(shardSelector([shard], shards), hash)).toBe(true);
        if (shards > 1) expect(serverMatches(shardSelector([(shard + 1) % shards], shards), hash)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('gets the boundaries right for shard counts that do not divide 2^64', () => {
    for (const shards of [3, 7, 10, 100, 255]) {
      for (let s = 1; s < shards; s++) {
        const start = rangeStart(s, shards);
        expect(shardOfHash(start, shards)).toBe(s);
        expect(shardOfHash(start - 1n, shards)).toBe(s - 1);
      }
      expect(shardOfHash((1n << 64n) - 1n, shards)).toBe(shards - 1);
    }
  });

  it('spreads uids about evenly', () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOfUid(crypto.randomUUID(), 16)]++;
    // 1,000 expected per shard; 5 standard deviations is about ±160.
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(200);
  });
});

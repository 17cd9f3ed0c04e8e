/**
 * The shard space: the 64-bit FNV-1a hash of an object's metadata.uid, split
 * into `n` contiguous ranges — exactly what kube-apiserver's
 * `shardRange(object.metadata.uid, start, end)` selector (KEP-5866) filters
 * on, so a range computed here and the server's filter agree to the object.
 *
 * Range i is [floor(i·2⁶⁴/n), floor((i+1)·2⁶⁴/n)); the last ends at 2⁶⁴,
 * written '0x10000000000000000' as the server expects.
 */

const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;
const SPACE = 1n << 64n;

/** FNV-1a, 64 bits, over the UTF-8 bytes of `value` (Go's hash/fnv New64a). */
export function fnv1a64(value: string): bigint {
  let h = OFFSET;
  for (const byte of Buffer.from(value, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * PRIME) & MASK;
  }
  return h;
}

export function rangeStart(shard: number, shards: number): bigint {
  return (BigInt(shard) * SPACE) / BigInt(shards);
}

/** Which of `shards` ranges a hash falls in. */
export function shardOfHash(hash: bigint, shards: number): number {
  let i = Number((hash * BigInt(shards)) >> 64n);
  // Integer division can put a boundary hash one range off: settle it against the exact bounds.
  while (i > 0 && hash < rangeStart(i, shards)) i--;
  while (i < shards - 1 && hash >= rangeStart(i + 1, shards)) i++;
  return i;
}

export function shardOfUid(uid: string, shards: number): number {
  return shardOfHash(fnv1a64(uid), shards);
}

const hex = (v: bigint) => (v === SPACE ? '0x10000000000000000' : `0x${v.toString(16).padStart(16, '0')}`);

/** The server's selector for a set of shards; adjacent shards merge into one range. */
export function shardSelector(owned: Iterable<number>, shards: number): string {
  const sorted = [...new Set(owned)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(`shardRange(object.metadata.uid, '${hex(rangeStart(sorted[i]!, shards))}', '${hex(rangeStart(sorted[j]! + 1, shards))}')`);
    i = j + 1;
  }
  return parts.join(' || ');
}

import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cmd/flags.js';
import { memberLeaseName } from '../../src/controller/sharding/shard-leases.js';

describe('sharding flags', () => {
  it('are off by default and parsed when given', () => {
    expect(parseFlags([], {})).toMatchObject({ shards: 0, shardFilter: 'auto', shardLeasePrefix: 'kubetx-shard' });
    expect(parseFlags(['--shards', '16', '--shard-filter', 'client', '--shard-lease-prefix', 'team-a'], {})).toMatchObject({ shards: 16, shardFilter: 'client', shardLeasePrefix: 'team-a' });
  });

  it('refuse bad values, naming the flag', () => {
    expect(() => parseFlags(['--shards', '257'], {})).toThrow(/--shards: want an integer 0\.\.256/);
    expect(() => parseFlags(['--shards', '-1'], {})).toThrow(/--shards/);
    expect(() => parseFlags(['--shards', '2.5'], {})).toThrow(/--shards/);
    expect(() => parseFlags(['--shard-filter', 'both'], {})).toThrow(/--shard-filter: want auto, server or client/);
    expect(() => parseFlags(['--shard-lease-prefix', 'Not_A_Label'], {})).toThrow(/--shard-lease-prefix/);
    expect(() => parseFlags(['--shards', '4', '--leader-elect'], {})).toThrow(/--shards and --leader-elect exclude each other/);
  });
});

describe('membership Lease names', () => {
  it('keep a pod name as it is and make anything else a DNS name that cannot collide', () => {
    expect(memberLeaseName('kubetx-shard', 'kubetx-7d9f8-abcde')).toBe('kubetx-shard-replica-kubetx-7d9f8-abcde');
    const a = memberLeaseName('p', 'Host_1');
    const b = memberLeaseName('p', 'host-1');
    expect(a).toMatch(/^p-replica-host-1-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(memberLeaseName('p', 'x'.repeat(400)).length).toBeLessThanOrEqual(253);
  });
});

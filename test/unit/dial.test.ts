import { afterAll, describe, expect, it } from 'vitest';
import { dial } from '../../src/participants/dial.js';
import { defaultEndpointPolicy } from '../../src/participants/endpoint.js';
import { ChannelPool } from '../../src/participants/pool.js';

const pool = new ChannelPool();
afterAll(() => pool.close());
const policy = { ...defaultEndpointPolicy, allowRawAddresses: true };

describe('dial: raw hostnames', () => {
  it('a hostname whose DNS answer is loopback or metadata is refused (checked on every answer, not only the first)', async () => {
    const deps = { pool, policy, lookupHost: async () => ['10.0.0.7', '169.254.169.254'] };
    await expect(dial(deps, { address: 'rebind.example:50051' }, 'ns', 'spec.branches[0].endpoint')).rejects.toThrow(
      /spec\.branches\[0\]\.endpoint\.address: rebind\.example resolves to 169\.254\.169\.254:50051 is in 169\.254\.0\.0\/16/,
    );
  });

  it('dials the checked IP, not the name (a second lookup cannot answer differently), and keeps the name as authority', async () => {
    const asked: string[] = [];
    const deps = { pool, policy, lookupHost: async (h: string) => (asked.push(h), ['10.0.0.7']) };
    const d = await dial(deps, { address: 'orders.example:50051' }, 'ns', 'f');
    expect(asked).toEqual(['orders.example']);
    expect(d.slot).toBe('orders.example:50051');
    expect(pool.size).toBe(1);
    expect(d.client.getChannel().getTarget()).toMatch(/10\.0\.0\.7:50051/);
  });
});

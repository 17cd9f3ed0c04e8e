import { describe, expect, it } from 'vitest';
import { addressRefusal, defaultAddressRules, parseCidr, splitHostPort, type AddressRules } from '../../src/participants/address-policy.js';

const rules = (o: Partial<AddressRules> = {}): AddressRules => ({ ...defaultAddressRules(), ...o });

describe('address rules', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'IPv6 loopback'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['169.254.169.254', 'the metadata service'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'IPv6 link-local'],
    ['fd00:ec2::254', "AWS's IPv6 metadata service"],
    ['0.0.0.0', 'this host'],
    ['::', 'unspecified'],
  ])('refuses %s (%s) by default', (ip) => {
    expect(addressRefusal(ip, 50051, rules())).toMatch(/which kubetx refuses/);
  });

  it.each(['10.1.2.3', '192.0.2.1', '2001:db8::7', '::ffff:10.0.0.1'])('allows %s', (ip) => {
    expect(addressRefusal(ip, 50051, rules())).toBeUndefined();
  });

  it('--allow-address-cidr opens a range, but not the operator\'s own ports in it', () => {
    const r = rules({ allowCidrs: [parseCidr('127.0.0.0/8')], ownPorts: new Set([8080]) });
    expect(addressRefusal('127.0.0.1', 50051, r)).toBeUndefined();
    expect(addressRefusal('127.0.0.1', 8080, r)).toMatch(/the operator's own port/);
    expect(addressRefusal('::ffff:127.0.0.1', 8080, r)).toMatch(/the operator's own port/);
    expect(addressRefusal('169.254.169.254', 80, r)).toMatch(/169\.254\.0\.0\/16/);
  });

  it('--allow-address opens one exact address, own port included', () => {
    const r = rules({ allowExact: new Set(['127.0.0.1:8080']), ownPorts: new Set([8080]) });
    expect(addressRefusal('127.0.0.1', 8080, r)).toBeUndefined();
    expect(addressRefusal('127.0.0.1', 8081, r)).toMatch(/127\.0\.0\.0\/8/);
  });

  it('parses CIDRs and refuses bad ones with a clear message', () => {
    expect(parseCidr('fd00::/8')).toMatchObject({ family: 6, prefix: 8 });
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length must be 0\.\.32/);
    expect(() => parseCidr('nope/8')).toThrow(/is not a CIDR/);
  });

  it('splits host:port and [v6]:port', () => {
    expect(splitHostPort('a.b:50051')).toEqual({ host: 'a.b', port: 50051 });
    expect(splitHostPort('[fd00::1]:80')).toEqual({ host: 'fd00::1', port: 80 });
    expect(splitHostPort('a.b:0')).toBeUndefined();
    expect(splitHostPort('a.b')).toBeUndefined();
  });
});

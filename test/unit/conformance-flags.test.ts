/** The kit's command line (src/conformance/flags.ts) and report lines (report.ts). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PAYLOAD, HelpRequested, parseDurationFlag, parseFlags, renderPayload, UsageError } from '../../src/conformance/flags.js';
import { summaryLine, verdictLine } from '../../src/conformance/report.js';

describe('kubetx-conformance flags', () => {
  it('has the documented defaults', () => {
    expect(parseFlags(['--target', 'localhost:50051', '--services', 'tcc,saga'])).toEqual({
      target: 'localhost:50051',
      hook: 'localhost:50051',
      services: ['tcc', 'saga'],
      payload: DEFAULT_PAYLOAD,
      concurrency: 32,
      raceRounds: 100,
      deadlineMs: 5000,
      json: false,
    });
  });

  it('takes the hook, TLS files, payload and limits', () => {
    const o = parseFlags([
      '--target', '10.0.0.1:443', '--hook', 'hook.svc:9000', '--services', 'receiver', '--tls-server-name', 'pay.svc',
      '--payload', '{"sku":"$ACCOUNT","qty":$AMOUNT}', '--concurrency', '4', '--race-rounds', '7', '--deadline', '750ms', '--json',
    ]);
    expect(o).toMatchObject({ hook: 'hook.svc:9000', tls: { serverName: 'pay.svc' }, concurrency: 4, raceRounds: 7, deadlineMs: 750, json: true });
  });

  it.each([
    [[], /--target is required/],
    [['--target', 'x:1'], /--services is required/],
    [['--target', 'x:1', '--services', 'tcc,xa'], /unknown "xa"/],
    [['--target', 'nohost', '--services', 'tcc'], /want host:port/],
    [['--target', 'x:1', '--services', 'tcc', '--insecure', '--tls-server-name', 'a'], /exclude each other/],
    [['--target', 'x:1', '--services', 'tcc', '--tls-cert', '/etc/hostname'], /go together/],
    [['--target', 'x:1', '--services', 'tcc', '--tls-ca', '/no/such/file'], /no such file/],
    [['--target', 'x:1', '--services', 'tcc', '--payload', '{"a":"$ACCOUNT"}'], /\$ACCOUNT and \$AMOUNT/],
    [['--target', 'x:1', '--services', 'tcc', '--payload', '{$ACCOUNT:$AMOUNT}'], /not JSON/],
    [['--target', 'x:1', '--services', 'tcc', '--concurrency', '0'], /positive integer/],
    [['--target', 'x:1', '--services', 'tcc', '--deadline', '5'], /duration/],
    [['--target', 'x:1', '--services', 'tcc', '--frobnicate'], /Unknown option/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseFlags(argv as string[])).toThrow(UsageError);
    expect(() => parseFlags(argv as string[])).toThrow(message);
  });

  it('answers --help', () => {
    expect(() => parseFlags(['--help'])).toThrow(HelpRequested);
  });

  it('parses durations and fills the payload template', () => {
    expect([parseDurationFlag('5s'), parseDurationFlag('250ms'), parseDurationFlag('1m'), parseDurationFlag('1.5s')]).toEqual([5000, 250, 60000, 1500]);
    expect(renderPayload(DEFAULT_PAYLOAD, '123456', 10)).toBe('{"account":"123456","amount":10}');
    expect(JSON.parse(renderPayload('{"userId":$ACCOUNT,"credit":$AMOUNT}', '123456789012345', 10))).toEqual({ userId: 123456789012345, credit: 10 });
  });

  it('prints one line per rule and a summary', () => {
    const v = { id: 'tcc.null-cancel', group: 'tcc' as const, pass: false, reason: 'after a Cancel without Try: held=-10', durationMs: 3 };
    expect(verdictLine(v)).toBe('FAIL tcc.null-cancel after a Cancel without Try: held=-10');
    expect(summaryLine({ target: 't:1', hook: 't:1', services: ['tcc'], rules: [v], passed: 0, failed: 1, durationMs: 1200, ok: false })).toBe(
      'FAILED: 1 of 1 rules failed (tcc on t:1, 1.2s): tcc.null-cancel',
    );
  });
});

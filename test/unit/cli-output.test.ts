import { describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { formatError } from '../../src/cli/errors.js';
import { age, decodeResult, formatShow, listTable, table, watchLine } from '../../src/cli/output.js';
import { completeWords, completionWords } from '../../src/cli/verbs/completion.js';
import '../../src/cli/verbs.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

function tx(name: string, namespace = 'default', status: DistributedTransaction['status'] = {}): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name, namespace, uid: 'u', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { mode: 'TCC', branches: [{ name: 'a', endpoint: { address: 'x:1' } }, { name: 'b', endpoint: { address: 'x:1' } }] },
    status,
  };
}

describe('decodeResult', () => {
  it('pretty-prints JSON, keeps printable text, labels anything else base64', () => {
    expect(decodeResult(b64('{"id":"r-1","n":[1,2]}'))).toEqual({ kind: 'json', text: '{\n  "id": "r-1",\n  "n": [\n    1,\n    2\n  ]\n}' });
    expect(decodeResult(b64('reservation r-1\nsecond line'))).toEqual({ kind: 'text', text: 'reservation r-1\nsecond line' });
    expect(decodeResult(b64('héllo'))).toEqual({ kind: 'text', text: 'héllo' });
    const binary = b64(Buffer.from([0, 1, 2, 255]));
    expect(decodeResult(binary)).toEqual({ kind: 'base64', text: binary });
    expect(decodeResult(b64('a\u0007b'))).toMatchObject({ kind: 'base64' });
    expect(decodeResult(b64(Buffer.from([0xc3, 0x28])))).toMatchObject({ kind: 'base64' }); // invalid UTF-8
  });
});

describe('tables', () => {
  it('pads every column but the last', () => {
    expect(table([['A', 'BB', 'C'], ['xxx', 'y', 'zzzz']])).toEqual(['A     BB   C', 'xxx   y    zzzz']);
  });

  it('list: the default columns, NAMESPACE with -A, DECISION and STALLED when wide', () => {
    const now = new Date('2026-01-01T00:05:00Z');
    const t = tx('pay-1', 'shop', { phase: 'Committed', decision: 'Confirm', progress: '2/2', message: 'all 2 branches confirmed' });
    expect(listTable([t, tx('pay-2', 'shop')], { allNamespaces: false, wide: false, now })).toEqual([
      'NAME    MODE   PHASE       BRANCHES   AGE   MESSAGE',
      'pay-1   TCC    Committed   2/2        5m    all 2 branches confirmed',
      'pay-2   TCC    <pending>   0/2        5m',
    ]);
    expect(listTable([t], { allNamespaces: true, wide: true, now })[0]).toBe('NAMESPACE   NAME    MODE   PHASE       BRANCHES   AGE   DECISION   STALLED   MESSAGE');
    expect(listTable([t], { allNamespaces: true, wide: true, now })[1]).toMatch(/^shop\s+pay-1\s+TCC\s+Committed\s+2\/2\s+5m\s+Confirm\s+False\s+all 2/);
    const long = tx('x', 'ns', { message: 'm'.repeat(200) });
    expect(listTable([long], { allNamespaces: false, wide: false, now })[1]!.endsWith(`${'m'.repeat(59)}…`)).toBe(true);
  });

  it('ages like kubectl', () => {
    const now = new Date('2026-01-10T00:00:00Z');
    const ago = (s: number) => age(new Date(now.getTime() - s * 1000).toISOString(), now);
    expect([ago(5), ago(119), ago(150), ago(600), ago(3 * 3600 + 300), ago(10 * 3600), ago(3 * 86400)]).toEqual(['5s', '119s', '2m30s', '10m', '3h5m', '10h', '3d']);
    expect(age(undefined, now)).toBe('<unknown>');
  });
});

describe('show and watch lines', () => {
  it('show lists each branch\'s calls and decoded results', () => {
    const t = tx('pay-1', 'shop', {
      phase: 'Committed',
      branches: [
        { name: 'a', state: 'Confirmed', attempts: 1, result: b64('{"r":1}'), history: [{ attempt: 1, method: 'Try', time: '2026-01-01T00:00:01.000Z', outcome: 'retryable', message: 'UNAVAILABLE' }, { attempt: 2, method: 'Try', time: '2026-01-01T00:00:02.000Z', outcome: 'ok' }] },
        { name: 'b', state: 'Confirmed', attempts: 1, result: b64(Buffer.from([0, 1])) },
      ],
    });
    const out = formatShow(t, []);
    expect(out).toContain('Calls (last 10 per branch):');
    expect(out).toMatch(/a\s+Try\s+1\s+2026-01-01T00:00:01.000Z\s+retryable\s+-\s+UNAVAILABLE/);
    expect(out).toContain('Results:\n  a (json):\n    {\n      "r": 1\n    }\n  b (base64): AAE=');
    expect(out).not.toContain('Calls: none recorded');
  });

  it('show says when no call was recorded (a clean run under --call-history failures)', () => {
    const t = tx('pay-2', 'shop', { phase: 'Committed', branches: [{ name: 'a', state: 'Confirmed', attempts: 1 }] });
    expect(formatShow(t, [])).toContain('Calls: none recorded (with the operator\'s default --call-history failures');
    const pending = tx('pay-3', 'shop', { phase: 'Pending', branches: [{ name: 'a', state: 'Pending', attempts: 0 }] });
    expect(formatShow(pending, [])).not.toContain('Calls');
  });

  it('show lists where broker branches were stored', () => {
    const t = tx('order-7', 'shop', {
      phase: 'Delivered',
      branches: [
        { name: 'stock', state: 'Delivered', attempts: 1, delivery: { route: 'nats', stream: 'ORDERS', sequence: '42' } },
        { name: 'credit', state: 'Delivered', attempts: 2, delivery: { route: 'redis', stream: 'kubetx:kubetx.shop.orders.credit:17', sequence: '1700000000000-0', duplicate: true } },
        { name: 'grpc', state: 'Delivered', attempts: 1 },
      ],
    });
    const out = formatShow(t, []);
    expect(out).toContain('Broker deliveries:');
    expect(out).toMatch(/stock\s+nats\s+ORDERS\s+42\s+no/);
    expect(out).toMatch(/credit\s+redis\s+kubetx:kubetx\.shop\.orders\.credit:17\s+1700000000000-0\s+yes/);
    expect(out.split('Broker deliveries:')[1]).not.toMatch(/\bgrpc\b/);
  });

  it('watch line: time, name, phase, progress, branch states', () => {
    const t = tx('pay-1', 'shop', { phase: 'Trying', progress: '1/2', branches: [{ name: 'a', state: 'Prepared', attempts: 1 }, { name: 'b', state: 'Trying', attempts: 1 }] });
    expect(watchLine(t, new Date('2026-01-01T00:00:00Z'))).toBe('2026-01-01T00:00:00.000Z shop/pay-1 Trying 1/2 a=Prepared b=Trying');
  });
});

describe('errors and completion', () => {
  it('formats API errors from the Status body as kubectl does', () => {
    const body = JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'distributedtransactions.kubetx.io "x" not found', code: 404 });
    expect(formatError({ code: 404, body })).toBe('Error from server (NotFound): distributedtransactions.kubetx.io "x" not found');
    expect(formatError({ code: 502, body: 'bad gateway' })).toBe('Error from server (HTTP 502): bad gateway');
    expect(formatError(new Error('connect ECONNREFUSED'))).toBe('error: connect ECONNREFUSED');
  });

  it('completes verbs, flags, shells, and names after a verb taking one (skipping flag values)', async () => {
    const names = async () => ['alpha', 'beta'];
    expect(await completeWords(['re'], names)).toEqual(['retry']);
    expect(await completeWords(['--kubeconfig', 'show', 's'], names)).toEqual(['show', 'shards']);
    expect(await completeWords(['show', '-n', 'ns', 'a'], names)).toEqual(['alpha']);
    expect(await completeWords(['completion', ''], names)).toEqual(['bash', 'zsh', 'fish']);
    expect(await completeWords(['broker', ''], names)).toEqual(['status', 'failover', 'recover']);
    expect(await completeWords(['list', '--ph'], names)).toEqual(['--phase']);
    expect(completionWords.verbs).toEqual(['list', 'get', 'show', 'retry', 'abort', 'shards', 'completion', 'dashboard', 'broker']);
  });
});

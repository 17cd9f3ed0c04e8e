/**
 * The conformance kit (`kubetx-conformance`, src/conformance) proves
 * something only if it can fail. Here it runs against:
 *   - a correct participant on the SDK barrier: every rule passes;
 *   - the same participant with one part of the contract broken
 *     (test/support/broken-participant.ts): the rules guarding it FAIL, exit 1;
 *   - the TypeScript examples (payment inventory, message order + credit,
 *     notify merchant) with their hooks on: exit 0;
 * in-process (`main`), and once through the real bin as a child process.
 * No control plane: every server here is a local gRPC server.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/conformance/cli.js';
import { ALL_RULES } from '../../src/conformance/rules/index.js';
import { startTestParticipant, type Break } from '../support/broken-participant.js';
import { startService } from '../../examples/payment/server.js';
import { PAYMENT_CONFORMANCE_PAYLOAD } from '../../examples/payment/conformance-hook.js';
import { startOrderService, startReceiver } from '../../examples/message/services.js';
import { CREDIT_CONFORMANCE_PAYLOAD, creditConformanceHook, orderConformanceHook } from '../../examples/message/conformance-hook.js';
import { addConformanceHook, serveConformanceHook } from '../../sdk/typescript/src/index.js';
import { startMerchant } from '../../examples/notify/merchant.js';
import { MERCHANT_CONFORMANCE_PAYLOAD } from '../../examples/notify/conformance-hook.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const ALL = 'tcc,saga,receiver,source';
const silent = pino({ level: 'silent' });

interface Outcome {
  code: number;
  out: string;
  err: string;
  verdicts: Map<string, { pass: boolean; reason: string }>;
}

/** The kit in-process with --json; the verdicts by rule id. */
async function kit(args: string[]): Promise<Outcome> {
  let out = '';
  let err = '';
  const code = await main([...args, '--json'], { out: (s) => (out += s), err: (s) => (err += s) });
  const verdicts = new Map<string, { pass: boolean; reason: string }>();
  if (out.startsWith('{')) for (const r of (JSON.parse(out) as { rules: Array<{ id: string; pass: boolean; reason: string }> }).rules) verdicts.set(r.id, r);
  return { code, out, err, verdicts };
}

/** A CA, a server certificate for participant.test and a client certificate, made with openssl. */
function makePki(dir: string) {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=kit-test-ca');
  for (const [name, cn, ext] of [['server', 'participant.test', 'subjectAltName=DNS:participant.test'], ['client', 'kit', 'extendedKeyUsage=clientAuth']] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1', '-extfile', f(`${name}.ext`));
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

function failed(o: Outcome): string[] {
  return [...o.verdicts].filter(([, v]) => !v.pass).map(([id]) => id);
}

describe('kubetx-conformance against the reference participant', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'kubetx-kit-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('passes every rule on a correct participant (in-process)', async () => {
    const p = await startTestParticipant();
    try {
      const o = await kit(['--target', p.address, '--services', ALL]);
      expect(failed(o), o.out).toEqual([]);
      expect(o.code).toBe(0);
      expect([...o.verdicts.keys()].sort()).toEqual(ALL_RULES.map((r) => r.id).sort());
    } finally {
      await p.stop();
    }
  });

  // Each break, and the rules that must catch it (others may fail too).
  const caught: Record<Break, string[]> = {
    'repeat-applies-twice': ['tcc.repeat-confirm', 'tcc.repeat-cancel', 'saga.repeat-compensate', 'receiver.deliver-idempotent', 'tcc.repeat-try', 'saga.repeat-execute'],
    'unstable-data': ['tcc.repeat-try', 'tcc.repeat-confirm', 'tcc.repeat-cancel', 'tcc.result-roundtrip', 'saga.repeat-execute', 'saga.repeat-compensate', 'saga.result-roundtrip', 'receiver.deliver-idempotent'],
    'no-null-compensation': ['tcc.null-cancel', 'tcc.cancel-after-refusal', 'saga.null-compensate'],
    'no-anti-hanging': ['tcc.anti-hanging', 'saga.anti-hanging'],
    'racy-barrier': ['tcc.try-cancel-race', 'saga.execute-compensate-race', 'receiver.deliver-idempotent'],
    'wrong-refusal-code': ['tcc.refusal-code', 'saga.refusal-code', 'tcc.anti-hanging', 'saga.anti-hanging'],
    'refuse-second-phase': ['tcc.confirm-applies', 'tcc.no-refusal-in-second-phase', 'saga.no-refusal-in-second-phase', 'receiver.no-refusal'],
    'deliver-not-deduplicated': ['receiver.deliver-idempotent'],
    'source-commits-unknown': ['source.check-rolled-back', 'source.check-claim'],
    'source-late-prepare': ['source.check-claim'],
    'source-unstable-answer': ['source.check-committed'],
  };

  it('has a broken participant for every rule (each rule can fail)', () => {
    expect([...new Set(Object.values(caught).flat())].sort()).toEqual(ALL_RULES.map((r) => r.id).sort());
  });

  for (const [broken, rules] of Object.entries(caught) as Array<[Break, string[]]>) {
    it(`catches a participant with ${broken}: ${rules.join(', ')} FAIL, exit 1`, async () => {
      const p = await startTestParticipant({ break: broken });
      try {
        const o = await kit(['--target', p.address, '--services', ALL, '--race-rounds', '60']);
        for (const id of rules) expect(o.verdicts.get(id)?.pass, `${id} should FAIL against ${broken}:\n${o.out}`).toBe(false);
        expect(o.code).toBe(1);
        // The breaks are narrow: the source and receiver groups are untouched by the TCC/Saga ones, and so on.
        if (broken === 'deliver-not-deduplicated' || broken.startsWith('source-') || broken === 'no-anti-hanging' || broken === 'racy-barrier') {
          expect(failed(o).every((id) => rules.includes(id) || id.endsWith('-race')), failed(o).join(', ')).toBe(true);
        }
      } finally {
        await p.stop();
      }
    });
  }

  it('speaks TLS with a client certificate (--tls-ca, --tls-cert, --tls-key, --tls-server-name)', async () => {
    const pki = makePki(join(tmp, 'pki'));
    const p = await startTestParticipant({
      credentials: grpc.ServerCredentials.createSsl(readFileSync(pki.ca), [{ cert_chain: readFileSync(pki.serverCert), private_key: readFileSync(pki.serverKey) }], true),
    });
    try {
      const tls = ['--tls-ca', pki.ca, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey, '--tls-server-name', 'participant.test'];
      const o = await kit(['--target', p.address, '--services', 'receiver,source', ...tls]);
      expect(failed(o), o.out + o.err).toEqual([]);
      expect(o.code).toBe(0);
      // Plaintext against a TLS port cannot even connect: exit 2, not a rule failure.
      expect((await kit(['--target', p.address, '--services', 'receiver', '--deadline', '500ms'])).code).toBe(2);
    } finally {
      await p.stop();
    }
  });

  it('exits 2 on bad flags and on an unreachable target, 0 on --help', async () => {
    expect((await kit(['--help'])).code).toBe(0);
    expect((await kit(['--services', ALL])).code).toBe(2);
    expect((await kit(['--target', '127.0.0.1:1', '--services', 'tcc,bogus'])).code).toBe(2);
    expect((await kit(['--target', '127.0.0.1:1', '--services', ALL, '--payload', '{"a":1}'])).code).toBe(2);
    const unreachable = await kit(['--target', '127.0.0.1:1', '--services', ALL, '--deadline', '300ms']);
    expect(unreachable.code).toBe(2);
    expect(unreachable.err).toMatch(/cannot connect to --target 127\.0\.0\.1:1/);
  });

  it('runs through the real bin: JSON report, exit 0; the launcher asks for a build when dist/ is missing', async () => {
    // The bin loads ../dist/src/conformance/cli.js: build just the kit into a scratch copy of that layout.
    const root = join(tmp, 'pkg');
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(join(ROOT, 'bin/kubetx-conformance'), join(root, 'bin/kubetx-conformance'));
    copyFileSync(join(ROOT, 'bin/launch.js'), join(root, 'bin/launch.js')); // shared by the bin/ launchers
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const noDist = await run(process.execPath, [join(root, 'bin/kubetx-conformance'), '--services', 'tcc']).catch((e: { code: number; stderr: string }) => e);
    expect((noDist as { code: number }).code).toBe(2);
    expect((noDist as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1);
    expect((noDist as { stderr: string }).stderr).toMatch(/run make build/);

    writeFileSync(
      join(root, 'tsconfig.json'),
      JSON.stringify({ extends: join(ROOT, 'tsconfig.build.json'), compilerOptions: { outDir: join(root, 'dist'), rootDir: ROOT, noEmit: false, declaration: false, sourceMap: false }, include: [], files: [join(ROOT, 'src/conformance/cli.ts')] }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')]);

    const p = await startTestParticipant();
    try {
      const { stdout } = await run(process.execPath, [join(root, 'bin/kubetx-conformance'), '--target', p.address, '--services', ALL, '--race-rounds', '30', '--json']);
      const report = JSON.parse(stdout) as { ok: boolean; failed: number; rules: unknown[] };
      expect(report.ok).toBe(true);
      expect(report.rules).toHaveLength(ALL_RULES.length);
      const text = await run(process.execPath, [join(root, 'bin/kubetx-conformance'), '--target', p.address, '--services', 'receiver']);
      expect(text.stdout).toMatch(/^PASS receiver\.deliver-idempotent .+\nPASS receiver\.no-refusal .+\nok: all 2 rules passed/);
    } finally {
      await p.stop();
    }
    const broken = await startTestParticipant({ break: 'deliver-not-deduplicated' });
    try {
      const r = await run(process.execPath, [join(root, 'bin/kubetx-conformance'), '--target', broken.address, '--services', 'receiver']).catch((e: { code: number; stdout: string }) => e);
      expect((r as { code: number }).code).toBe(1);
      expect((r as { stdout: string }).stdout).toMatch(/^FAIL receiver\.deliver-idempotent /m);
    } finally {
      await broken.stop();
    }
  });
});

describe('kubetx-conformance against the TypeScript examples', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubetx-kit-examples-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('examples/payment (inventory: TCC and Saga over its items table) passes', async () => {
    const s = await startService({ service: 'inventory', dbPath: join(dir, 'inventory.db'), address: '127.0.0.1:0', logger: silent, conformanceHook: true });
    try {
      const o = await kit(['--target', `127.0.0.1:${s.port}`, '--services', 'tcc,saga', '--payload', PAYMENT_CONFORMANCE_PAYLOAD]);
      expect(failed(o), o.out).toEqual([]);
      expect(o.code).toBe(0);
    } finally {
      await s.stop(0);
    }
  });

  it('examples/message (order: CheckPrepared from its outbox; credit: receiver) passes', async () => {
    const order = await startOrderService({ dbPath: join(dir, 'order.db'), address: '127.0.0.1:0', logger: silent });
    const credit = await startReceiver({ name: 'credit', dbPath: join(dir, 'credit.db'), address: '127.0.0.1:0', logger: silent });
    addConformanceHook(order.participant.server, orderConformanceHook(order));
    const creditHook = await serveConformanceHook('127.0.0.1:0', creditConformanceHook(credit.db));
    try {
      const src = await kit(['--target', `127.0.0.1:${order.port}`, '--services', 'source']);
      expect(failed(src), src.out).toEqual([]);
      expect(src.code).toBe(0);
      const rcv = await kit(['--target', `127.0.0.1:${credit.port}`, '--hook', `127.0.0.1:${creditHook.port}`, '--services', 'receiver', '--payload', CREDIT_CONFORMANCE_PAYLOAD]);
      expect(failed(rcv), rcv.out).toEqual([]);
      expect(rcv.code).toBe(0);
    } finally {
      await creditHook.stop();
      await Promise.all([order.stop(0), credit.stop(0)]);
    }
  });

  it('examples/notify (merchant: receiver) passes', async () => {
    const m = await startMerchant({ dbPath: join(dir, 'merchant.db'), address: '127.0.0.1:0', logger: silent, conformanceHook: true });
    try {
      const o = await kit(['--target', `127.0.0.1:${m.port}`, '--services', 'receiver', '--payload', MERCHANT_CONFORMANCE_PAYLOAD]);
      expect(failed(o), o.out).toEqual([]);
      expect(o.code).toBe(0);
    } finally {
      await m.stop(0);
    }
  });

  it('leaves the hook off unless asked', async () => {
    const m = await startMerchant({ dbPath: join(dir, 'merchant-off.db'), address: '127.0.0.1:0', logger: silent });
    try {
      const o = await kit(['--target', `127.0.0.1:${m.port}`, '--services', 'receiver', '--payload', MERCHANT_CONFORMANCE_PAYLOAD]);
      expect(o.code).toBe(2);
      expect(o.err).toMatch(/does not serve kubetx\.conformance\.v1\.ConformanceHook/);
    } finally {
      await m.stop(0);
    }
  });
});

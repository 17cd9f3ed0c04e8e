/**
 * The participant SDK as a user gets it: `npm pack` of sdk/typescript (its
 * prepack builds dist/), the tarball installed into a scratch project outside
 * the repository together with better-sqlite3 and nothing else a participant
 * would not add itself (@types/better-sqlite3, @types/node). A small SQLite
 * TCC participant is type-checked with the project's own tsconfig,
 * skipLibCheck false (so every .d.ts the SDK ships and pulls in is checked),
 * compiled, started, and called over gRPC.
 *
 * Installs from the npm cache when it is warm (--prefer-offline; hack/setup.sh
 * fills it with these exact versions) and with --ignore-scripts: the native
 * better-sqlite3 binary is copied from the repository's own build (same
 * version, same Node), because compiling it takes minutes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TccParticipantClient, type BranchRequest, type BranchResponse } from '../../src/gen/kubetx/v1/participant.js';
import { repoRoot } from '../support/testenv-paths.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const sdkDir = join(repoRoot, 'sdk/typescript');
const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
const versionOf = (name: string): string =>
  (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

// What a SQLite-only participant writes: the default entry point plus /sqlite, nothing of pg or the Kubernetes client.
const PARTICIPANT = `import Database from 'better-sqlite3';
import { serveParticipant, Refused, type BranchContext } from '@kubetx/participant';
import { SqliteBarrier } from '@kubetx/participant/sqlite';

const db = new Database(process.argv[2] ?? ':memory:');
db.exec("CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, free INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0)");
db.exec("CREATE TABLE IF NOT EXISTS holds (uid TEXT PRIMARY KEY, qty INTEGER NOT NULL)");
db.prepare("INSERT OR IGNORE INTO stock (sku, free) VALUES ('A-1', 10)").run();

type Order = { qty: number };
const qtyOf = (ctx: BranchContext<Database.Database>): number => (ctx.payload as Order).qty;

const participant = await serveParticipant<Database.Database>({
  address: '127.0.0.1:0',
  barrier: new SqliteBarrier(db),
  tcc: {
    try: (ctx) => {
      const qty = qtyOf(ctx);
      const r = ctx.tx.prepare('UPDATE stock SET free = free - ?, held = held + ? WHERE sku = ? AND free >= ?').run(qty, qty, 'A-1', qty);
      if (r.changes === 0) throw new Refused('insufficient stock');
      ctx.tx.prepare('INSERT INTO holds (uid, qty) VALUES (?, ?)').run(ctx.uid, qty);
      return { message: 'held', data: { holdId: ctx.uid, qty } };
    },
    confirm: (ctx) => {
      const { qty } = JSON.parse(ctx.result.toString()) as Order;
      ctx.tx.prepare('UPDATE stock SET held = held - ? WHERE sku = ?').run(qty, 'A-1');
      ctx.tx.prepare('DELETE FROM holds WHERE uid = ?').run(ctx.uid);
    },
    cancel: (ctx) => {
      const { qty } = JSON.parse(ctx.result.toString()) as Order;
      ctx.tx.prepare('UPDATE stock SET free = free + ?, held = held - ? WHERE sku = ?').run(qty, qty, 'A-1');
      ctx.tx.prepare('DELETE FROM holds WHERE uid = ?').run(ctx.uid);
    },
  },
  handleSignals: true,
  gracePeriodMs: 1000,
});
process.stdout.write(JSON.stringify({ port: participant.port }) + '\\n');
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
    outDir: 'out',
    rootDir: '.',
  },
  files: ['participant.ts'],
};

let work: string;
let app: string;
let packed: string[];
let child: ChildProcess | undefined;
let client: TccParticipantClient | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kubetx-sdk-pack-'));
  app = join(work, 'app');
  mkdirSync(app);
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], { cwd: sdkDir, maxBuffer: 64 << 20, timeout: 120_000 });
  const info = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info[0]!.files.map((f) => f.path);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sqlite-participant', private: true, type: 'module' }));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(app, 'participant.ts'), PARTICIPANT);
  const b3 = versionOf('better-sqlite3');
  const deps = [join(work, info[0]!.filename), `better-sqlite3@${b3}`, `@types/better-sqlite3@${versionOf('@types/better-sqlite3')}`, `@types/node@${versionOf('@types/node')}`];
  await run(npm, ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', ...deps], { cwd: app, maxBuffer: 64 << 20, timeout: 120_000 });
  // The native addon, from the repository's build of the same version (installing ran no scripts).
  const addon = 'build/Release/better_sqlite3.node';
  mkdirSync(join(app, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
  copyFileSync(join(repoRoot, 'node_modules/better-sqlite3', addon), join(app, 'node_modules/better-sqlite3', addon));
}, 240_000);

afterAll(() => {
  client?.close();
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

function call(method: 'try' | 'confirm' | 'cancel', req: Partial<BranchRequest>): Promise<BranchResponse> {
  const full: BranchRequest = {
    transactionUid: 'u-1', namespace: 'shop', name: 'order-1', branch: 'inventory', operation: 'reserve',
    payload: Buffer.alloc(0), result: Buffer.alloc(0), attempt: 1, ...req,
  };
  return new Promise((resolve, reject) => {
    client![method](full, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

describe('@kubetx/participant from its packed tarball', () => {
  it('the tarball holds dist/ (JS and declarations), README and LICENSE, and no sources or tests', () => {
    expect(packed).toEqual(expect.arrayContaining(['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/sqlite.d.ts', 'dist/pg.d.ts', 'dist/message.d.ts', 'dist/broker.d.ts', 'dist/broker.js']));
    expect(packed.filter((p) => !p.startsWith('dist/') && !['package.json', 'LICENSE', 'README.md'].includes(p))).toEqual([]);
  });

  it('a SQLite-only project installs neither pg nor the Kubernetes client nor pino nor the broker clients', () => {
    for (const absent of ['pg', '@types/pg', '@kubernetes/client-node', 'ws', 'pino', '@nats-io/transport-node', '@nats-io/jetstream', 'ioredis']) expect(existsSync(join(app, 'node_modules', absent)), absent).toBe(false);
    expect(existsSync(join(app, 'node_modules/@grpc/grpc-js'))).toBe(true);
  });

  it('type-checks with skipLibCheck false and compiles', async () => {
    const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: app, maxBuffer: 16 << 20 }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`tsc failed in the scratch project:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    const files = r.stdout.split('\n').filter(Boolean);
    // The program saw the SDK's declarations, and none of pg's or ws's.
    expect(files.some((f) => f.includes('node_modules/@kubetx/participant/dist/index.d.ts'))).toBe(true);
    expect(files.some((f) => f.includes('node_modules/@kubetx/participant/dist/sqlite.d.ts'))).toBe(true);
    expect(files.filter((f) => /\/(pg|ws|@kubernetes)\//.test(f) || f.includes('/pg-barrier.d.ts'))).toEqual([]);
    expect(existsSync(join(app, 'out/participant.js'))).toBe(true);
  }, 90_000);

  it('runs: Try through the barrier over gRPC, its repeat answered from the barrier, a refusal, Confirm, a null compensation', async () => {
    child = spawn(process.execPath, ['out/participant.js', join(work, 'inventory.db')], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child!.stdout! });
      lines.on('line', (line) => {
        const m = JSON.parse(line) as { port?: number; msg?: string };
        if (m.port && m.msg === undefined) resolve(m.port);
      });
      child!.once('exit', (code) => reject(new Error(`participant exited with ${code}: ${stderr}`)));
    });
    client = new TccParticipantClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

    const payload = Buffer.from(JSON.stringify({ qty: 3 }));
    const first = await call('try', { payload });
    expect(first.message).toBe('held');
    expect(JSON.parse(first.data.toString())).toEqual({ holdId: 'u-1', qty: 3 });
    const repeat = await call('try', { payload, attempt: 2 });
    expect(repeat.data.toString()).toBe(first.data.toString());
    await expect(call('try', { transactionUid: 'u-2', payload: Buffer.from(JSON.stringify({ qty: 50 })) })).rejects.toMatchObject({ code: grpc.status.ABORTED });
    await call('confirm', { result: first.data });
    await call('cancel', { transactionUid: 'u-3', result: Buffer.alloc(0) }); // no Try before it: answered OK, the handler does not run

    child.kill('SIGTERM'); // handleSignals: drains and exits
    const code = await new Promise<number | null>((resolve) => (child!.exitCode !== null ? resolve(child!.exitCode) : child!.once('exit', resolve)));
    expect(code, stderr).toBe(0);
    // The ledger: 3 of 10 sold once, despite the repeated Try; nothing held.
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(work, 'inventory.db'), { readonly: true });
    try {
      expect(db.prepare("SELECT free, held FROM stock WHERE sku = 'A-1'").get()).toEqual({ free: 7, held: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM holds').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  }, 60_000);
});

/**
 * The package's bins from a checkout: without dist/ each prints one line
 * ("<bin>: not built …; run make build (or npm run build)") and exits 2,
 * never ERR_MODULE_NOT_FOUND; after the build they run.
 *
 * The checkout is simulated in a temp dir (a `git clone` would miss
 * uncommitted work): package.json, bin/, src/ and the tsconfigs copied, the
 * repository's node_modules linked. The build is `tsc -p tsconfig.build.json`
 * there, what `npm run build` / `make build` run.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/testenv-paths.js';

const run = promisify(execFile);
const BINS = ['kubetx', 'kubectl-dtx', 'kubetx-conformance'] as const;

let checkout: string;

beforeAll(() => {
  checkout = mkdtempSync(join(tmpdir(), 'kubetx-bins-'));
  for (const p of ['package.json', 'bin', 'src', 'tsconfig.json', 'tsconfig.build.json']) cpSync(join(repoRoot, p), join(checkout, p), { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(checkout, 'node_modules'), 'dir');
});

afterAll(() => {
  if (checkout) rmSync(checkout, { recursive: true, force: true });
});

async function bin(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // Executed as a user's shell would (shebang, exec bit), not through `node`.
  return run(join(checkout, 'bin', name), args, { cwd: checkout, timeout: 30_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
  );
}

describe('bins from a checkout', () => {
  it('every package.json bin is a launcher in bin/', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual(Object.fromEntries(BINS.map((b) => [b, `bin/${b}`])));
  });

  it.each(BINS)('%s without a build: one line, "run make build", exit 2', async (name) => {
    expect(existsSync(join(checkout, 'dist'))).toBe(false);
    const r = await bin(name, ['--help']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^${name}: not built \\(dist/src/[\\w/-]+\\.js is missing\\); run make build \\(or npm run build\\)\\n$`));
  });

  it('after the build they run: kubetx --help, kubectl-dtx --help, kubetx-conformance --help', async () => {
    await run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: checkout, timeout: 110_000 });
    const op = await bin('kubetx', ['--help']);
    expect(op.code, op.stderr).toBe(0);
    expect(op.stdout).toContain('--kubeconfig');
    const dtx = await bin('kubectl-dtx', ['--help']);
    expect(dtx.stdout + dtx.stderr).toMatch(/kubectl dtx retry/);
    const kit = await bin('kubetx-conformance', ['--help']);
    expect(kit.code, kit.stderr).toBe(0);
    expect(kit.stdout + kit.stderr).toContain('--target');
  }, 120_000);
});

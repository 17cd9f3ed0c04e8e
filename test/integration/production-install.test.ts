/**
 * Production-install smoke test: what `npm install kubetx` gives a user, with
 * runtime dependencies only. Packs the repo with `npm pack` (its prepack
 * builds dist/src afresh), installs the tarball with --omit=dev into a fresh project
 * (from the npm cache when it is warm, as after hack/setup.sh), then runs the
 * installed operator and kubectl plugin. Needs no control plane, but lives in
 * the integration project because it builds and installs (tens of seconds).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/testenv-paths.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let work: string;
let app: string;
let packed: string[];
let pkg: { files?: string[]; bin?: Record<string, string> };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kubetx-pack-'));
  app = join(work, 'app');
  pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as typeof pkg;
  // The tarball ships dist/: prepack builds it from the current sources (what `npm run build` does).
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], { cwd: repoRoot, maxBuffer: 64 << 20, timeout: 170_000 });
  const info = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info[0]!.files.map((f) => f.path);
  const tarball = join(work, info[0]!.filename);
  await run('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'kubetx-install-smoke', private: true, type: 'module' }));
  // --prefer-offline: the cache is warm after hack/setup.sh; a cold cache falls back to the registry.
  await run(npm, ['install', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: app, maxBuffer: 64 << 20, timeout: 170_000,
  });
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('production install (npm pack → npm install --omit=dev)', () => {
  it('the package holds what the Dockerfile copies: dist/src, dist/dashboard and package.json; the bins, LICENSE', () => {
    expect(packed).toContain('package.json');
    expect(packed).toContain('LICENSE');
    expect(packed).toContain('dist/src/main.js');
    expect(packed).toContain('dist/src/cli/kubectl-dtx.js');
    expect(packed).toEqual(expect.arrayContaining(['bin/kubetx', 'bin/kubectl-dtx', 'bin/kubetx-conformance', 'bin/launch.js']));
    // The participant SDK is its own package now (@kubetx/participant, sdk/typescript; test/unit/sdk-package.test.ts).
    expect(packed.filter((p) => p.startsWith('dist/src/sdk/'))).toEqual([]);
    // The dashboard's static bundle (kubectl dtx dashboard serves it).
    expect(packed).toEqual(expect.arrayContaining(['dist/dashboard/index.html', 'dist/dashboard/app.js', 'dist/dashboard/app.css']));
    // Nothing compiled from tests or examples (tsconfig.build.json includes src/ only).
    expect(packed.filter((p) => p.startsWith('dist/') && !p.startsWith('dist/src/') && !p.startsWith('dist/dashboard/'))).toEqual([]);
  });

  it('ships no test files (checked once package.json has a "files" allow-list)', () => {
    if (!pkg.files) return; // Without "files" npm packs everything .gitignore lets through, test/ included.
    expect(packed.filter((p) => p.startsWith('test/') || /\.test\.[cm]?[jt]s$/.test(p))).toEqual([]);
  });

  it('no devDependency was installed', () => {
    for (const dev of ['typescript', 'vitest', 'tsx', 'better-sqlite3']) expect(existsSync(join(app, 'node_modules', dev))).toBe(false);
    expect(existsSync(join(app, 'node_modules/@grpc/grpc-js'))).toBe(true);
  });

  it('the installed operator runs: dist/src/main.js --help exits 0 and lists its flags', async () => {
    const { stdout } = await run(process.execPath, [join(app, 'node_modules/kubetx/dist/src/main.js'), '--help'], { cwd: app });
    for (const flag of ['--kubeconfig', '--namespaces', '--workers', '--default-ttl-after-finished', '--metrics-bind-address', '--health-probe-bind-address']) {
      expect(stdout).toContain(flag);
    }
  });

  it('the installed bins work: kubetx --help and kubectl-dtx --help', async () => {
    expect(Object.keys(pkg.bin ?? {})).toEqual(expect.arrayContaining(['kubetx', 'kubectl-dtx']));
    const op = await run(join(app, 'node_modules/.bin/kubetx'), ['--help'], { cwd: app });
    expect(op.stdout).toContain('--kubeconfig');
    const dtx = await run(join(app, 'node_modules/.bin/kubectl-dtx'), ['--help'], { cwd: app });
    expect(dtx.stdout + dtx.stderr).toMatch(/retry/);
    expect(dtx.stdout + dtx.stderr).toMatch(/abort/);
  });

  it('kubetx-conformance runs from the install: --help exits 0', async () => {
    const kit = await run(join(app, 'node_modules/.bin/kubetx-conformance'), ['--help'], { cwd: app });
    expect(kit.stdout + kit.stderr).toContain('--target');
  });
});

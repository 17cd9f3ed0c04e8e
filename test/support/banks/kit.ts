/**
 * The conformance kit against a bank: in this process (src/conformance/cli.ts's
 * main), or as the real bin/kubetx-conformance, either the repository's (it
 * runs the built dist/) or one built alone into a scratch package (as
 * test/unit/conformance-kit.test.ts does).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KitReport } from '../../../src/conformance/runner.js';
import { repoRoot } from '../testenv-paths.js';

const run = promisify(execFile);

/** The kit's --json output. */
export type KitJsonReport = KitReport & { kind: string; version: number };

/** Runs the conformance kit (by default tcc, saga) in this process; its JSON report and exit code. */
export async function runConformanceKit(address: string, services = 'tcc,saga'): Promise<{ code: number; report: KitJsonReport; out: string }> {
  const { main } = await import('../../../src/conformance/cli.js');
  let out = '';
  let err = '';
  const code = await main(['--target', address, '--services', services, '--json'], { out: (t) => (out += t), err: (t) => (err += t) });
  let report: KitJsonReport;
  try {
    report = JSON.parse(out) as KitJsonReport;
  } catch {
    throw new Error(`conformance kit (exit ${code}) printed no JSON report: ${out} ${err}`);
  }
  return { code, report, out: out + err };
}

/** Runs a kubetx-conformance bin with node; its exit code and output (a failing run is an answer, not an error). */
export async function runKitBin(bin: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: repoRoot, timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Builds the conformance kit alone into a scratch package under `root` and returns its real bin. */
export async function buildKitBin(root: string): Promise<string> {
  mkdirSync(join(root, 'bin'), { recursive: true });
  // The bin and the modules it imports beside it (bin/launch.js).
  for (const f of readdirSync(join(repoRoot, 'bin'))) {
    if (f === 'kubetx-conformance' || f.endsWith('.js')) copyFileSync(join(repoRoot, 'bin', f), join(root, 'bin', f));
  }
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({
      extends: join(repoRoot, 'tsconfig.build.json'),
      compilerOptions: { outDir: join(root, 'dist'), rootDir: repoRoot, noEmit: false, declaration: false, sourceMap: false },
      include: [],
      files: [join(repoRoot, 'src/conformance/cli.ts')],
    }),
  );
  await run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { timeout: 120_000 });
  return join(root, 'bin/kubetx-conformance');
}

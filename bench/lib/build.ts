/**
 * The benchmark measures the operator as the image runs it: compiled
 * (dist/src/main.js under plain node), not the sources through tsx, whose
 * loader and transpile cache add tens of MiB of RSS and CPU at start.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** `tsc -p tsconfig.build.json` in `root` (this checkout or a baseline worktree). */
export function buildOperator(root: string): void {
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

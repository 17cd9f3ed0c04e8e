/** Runs a repository entry point (src/cli/kubectl-dtx.ts, …) through tsx as a child process, the way a user runs the plugin. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './testenv-paths.js';

export const TSX = join(repoRoot, 'node_modules/tsx/dist/cli.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runEntry(entry: string, args: string[], kubeconfig: string, timeoutMs = 90_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSX, join(repoRoot, entry), '--kubeconfig', kubeconfig, ...args], { cwd: repoRoot, timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

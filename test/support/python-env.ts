/**
 * The Python venv for tests that run the Python SDK's example (examples/bank-python):
 * `bash hack/python-gen.sh --venv` makes it once (pinned by
 * sdk/python/requirements-dev.txt, in a cache dir outside the repository keyed by
 * a hash of that file; the first time downloads from PyPI, a minute or so) and
 * prints its path. The SDK is not installed into it: the venv is shared by every
 * checkout on the machine, so this checkout's sdk/python/src goes first on
 * PYTHONPATH of each process instead (as hack/test-python.sh does).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './testenv-paths.js';

const run = promisify(execFile);

export interface PythonEnv {
  /** The venv's directory. */
  venv: string;
  /** Its python. */
  python: string;
  /** The environment that makes this checkout's kubetx_participant importable (PYTHONPATH). */
  env: Record<string, string>;
}

let cached: Promise<PythonEnv> | undefined;

async function make(timeoutMs: number): Promise<PythonEnv> {
  let venv: string;
  try {
    const { stdout } = await run('bash', [join(repoRoot, 'hack/python-gen.sh'), '--venv'], { cwd: repoRoot, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    venv = stdout.trim().split('\n').pop()!;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`making the Python venv (bash hack/python-gen.sh --venv) failed: ${e.stderr || e.message}`);
  }
  const python = join(venv, 'bin', 'python');
  const sdk = join(repoRoot, 'sdk/python/src');
  return { venv, python, env: { PYTHONPATH: process.env.PYTHONPATH ? `${sdk}:${process.env.PYTHONPATH}` : sdk } };
}

/** The venv, made or found once per test process. */
export function pythonEnv(timeoutMs = 300_000): Promise<PythonEnv> {
  cached ??= make(timeoutMs).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

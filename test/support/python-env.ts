/**
 * The Python venv for tests that run the Python SDK's example (examples/bank-python):
 * `bash hack/python-gen.sh --venv` makes it once (pinned by
 * sdk/python/requirements-dev.txt, in a cache dir outside the repository keyed by
 * a hash of that file; the first time downloads from PyPI, a minute or so) and
 * prints its path; the SDK is then installed into it editable, as
 * hack/test-python.sh does. Later calls find both and take well under a second.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './testenv-paths.js';

const run = promisify(execFile);

export interface PythonEnv {
  /** The venv's directory. */
  venv: string;
  /** Its python, with kubetx_participant importable. */
  python: string;
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
  const check = `import kubetx_participant, pathlib, sys; sys.exit(pathlib.Path(kubetx_participant.__file__).resolve().parents[1] != pathlib.Path(${JSON.stringify(join(repoRoot, 'sdk/python/src'))}).resolve())`;
  try {
    await run(python, ['-c', check], { cwd: repoRoot });
  } catch {
    await run(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--no-deps', '--no-build-isolation', '-e', join(repoRoot, 'sdk/python')], {
      cwd: repoRoot,
      timeout: timeoutMs,
    });
  }
  return { venv, python };
}

/** The venv, made or found once per test process. */
export function pythonEnv(timeoutMs = 300_000): Promise<PythonEnv> {
  cached ??= make(timeoutMs).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/**
 * Builds a Go binary for a test, once per source state: `go build` into a
 * cache directory outside the repository, keyed by a hash of the module's
 * sources (every .go file, go.mod and go.sum), those of its local `replace`
 * targets (e.g. ../../sdk/go), the Go version and the build settings. A second
 * run with unchanged sources finds the binary and does not call go at all.
 *
 * The first build downloads the module's dependencies from the module proxy
 * (GOPROXY), which can take a minute or two on a cold module cache: give the
 * caller's hook the time.
 *
 * Cache: $KUBETX_GO_BIN_CACHE, else $XDG_CACHE_HOME/kubetx/go-bin, else
 * ~/.cache/kubetx/go-bin. Builds go to a temporary name and are renamed into
 * place, so two test processes building at once do not see a half-written file.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './testenv-paths.js';

const run = promisify(execFile);

export interface GoBuildOptions {
  /** The module's directory, relative to the repository root or absolute (e.g. "examples/bank-go"). */
  module: string;
  /** The package to build, relative to the module. @default "." */
  pkg?: string;
  /** The binary's file name. @default the module directory's base name */
  name?: string;
  /** How long `go build` may take (module downloads included). @default 300_000 */
  timeoutMs?: number;
}

export interface GoBinary {
  path: string;
  /** True when this call ran `go build`, false when the cached binary was used. */
  built: boolean;
  /** The source hash in the cache key. */
  hash: string;
}

function cacheRoot(): string {
  if (process.env.KUBETX_GO_BIN_CACHE) return process.env.KUBETX_GO_BIN_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kubetx', 'go-bin');
}

/** Local directories a go.mod's `replace … => <path>` lines point at. */
function localReplaces(moduleDir: string): string[] {
  const mod = readFileSync(join(moduleDir, 'go.mod'), 'utf8');
  const dirs: string[] = [];
  for (const m of mod.matchAll(/=>\s*(\.{1,2}\/\S*|\/\S+)\s*$/gm)) dirs.push(resolve(moduleDir, m[1]!));
  return dirs;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, out);
    else if (entry.name.endsWith('.go') || entry.name === 'go.mod' || entry.name === 'go.sum') out.push(path);
  }
  return out;
}

async function goEnv(): Promise<string> {
  try {
    const { stdout } = await run('go', ['env', 'GOVERSION', 'GOOS', 'GOARCH', 'CGO_ENABLED', 'GOFLAGS']);
    return stdout;
  } catch (err) {
    throw new Error(`go not found or not working (${(err as Error).message}): install Go (see sdk/go) to run this test`);
  }
}

export async function goBuild(opts: GoBuildOptions): Promise<GoBinary> {
  const moduleDir = isAbsolute(opts.module) ? opts.module : join(repoRoot, opts.module);
  const pkg = opts.pkg ?? '.';
  const name = opts.name ?? moduleDir.split('/').pop()!;

  const hash = createHash('sha256');
  hash.update(await goEnv());
  hash.update(`pkg=${pkg}\n`);
  for (const dir of [moduleDir, ...localReplaces(moduleDir)]) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${relative(repoRoot, moduleDir)}/go.mod: replace target ${dir} is missing`);
    for (const file of sourceFiles(dir).sort()) {
      hash.update(`${relative(repoRoot, file)}\n`);
      hash.update(readFileSync(file));
    }
  }
  const digest = hash.digest('hex').slice(0, 16);
  const path = join(cacheRoot(), `${name}-${digest}`, name);
  if (existsSync(path)) return { path, built: false, hash: digest };

  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await run('go', ['build', '-o', tmp, pkg], { cwd: moduleDir, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 16 * 1024 * 1024 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    const e = err as { stderr?: string; message: string };
    const out = e.stderr || e.message;
    // E.g. a local replace target (the SDK) that gained a dependency: go.mod/go.sum are stale.
    const hint = /go mod tidy|missing go\.sum entry/.test(out) ? `\n(run \`go mod tidy\` in ${relative(repoRoot, moduleDir)} and commit go.mod and go.sum)` : '';
    throw new Error(`go build in ${relative(repoRoot, moduleDir)} failed: ${out}${hint}`);
  }
  return { path, built: true, hash: digest };
}

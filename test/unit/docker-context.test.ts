/**
 * The Docker build contexts: both Dockerfiles (the operator's, and the payment
 * example's, built from the repository root) COPY only paths that exist and
 * that .dockerignore lets through, and the junk stays out. No Docker needed:
 * .dockerignore is matched here with Docker's rules (moby/patternmatcher):
 * patterns are relative to the context root, `*` and `?` stop at `/`, `**`
 * spans directories, a pattern that matches a parent directory matches
 * everything below it, and the last matching line wins (`!` re-includes).
 */
import { execFileSync } from 'node:child_process';
import { type Dirent, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/testenv-paths.js';

interface Pattern {
  text: string;
  re: RegExp;
  exclusion: boolean;
}

/** A pattern (or one path segment) as a regular expression, as patternmatcher compiles it; no `[...]` classes. */
function globToRegExp(p: string, whole = true): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*' && whole) {
      i++;
      if (p[i + 1] === '/') i++;
      re += i + 1 >= p.length ? '.*' : '(.*/)?';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[' || c === '\\') throw new Error(`pattern "${p}": [...] and \\ are not supported by this matcher`);
    else re += c.replace(/[.+^${}()|\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function parseDockerignore(text: string): Pattern[] {
  const out: Pattern[] = [];
  for (const raw of text.split('\n')) {
    let p = raw.trim();
    if (!p || p.startsWith('#')) continue;
    const exclusion = p.startsWith('!');
    if (exclusion) p = p.slice(1).trim();
    p = p.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\/\.\//g, '/');
    out.push({ text: raw.trim(), re: globToRegExp(p), exclusion });
  }
  return out;
}

/** True when `path` (relative, with /) is left out of the build context. */
function ignored(patterns: Pattern[], path: string): boolean {
  const parents = path.split('/').slice(0, -1);
  let matched = false;
  for (const pat of patterns) {
    if (pat.exclusion !== matched) continue; // as patternmatcher: only a pattern that can change the answer
    let match = pat.re.test(path);
    for (let i = 1; !match && i <= parents.length; i++) match = pat.re.test(parents.slice(0, i).join('/'));
    if (match) matched = !pat.exclusion;
  }
  return matched;
}

/** The context sources of every COPY/ADD without --from (continuation lines joined, flags dropped). */
function copiedSources(dockerfile: string): string[] {
  const text = readFileSync(join(repoRoot, dockerfile), 'utf8').replace(/\\\n/g, ' ');
  const sources: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(COPY|ADD)\s+(.*)$/i.exec(line);
    if (!m) continue;
    const words = m[2]!.trim().startsWith('[') ? (JSON.parse(m[2]!) as string[]) : m[2]!.trim().split(/\s+/);
    if (words.some((w) => w.startsWith('--from'))) continue;
    sources.push(...words.filter((w) => !w.startsWith('--')).slice(0, -1));
  }
  return sources;
}

// The source tree as git sees it (tracked, or new and not .gitignored): what a checkout holds.
// Outside a git work tree (a source tarball): every file but the usual generated directories.
function sourceTree(): string[] {
  try {
    return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean);
  } catch {
    const skip = new Set(['.git', 'node_modules', 'dist', '.tmp', 'coverage']);
    return (readdirSync(repoRoot, { recursive: true, withFileTypes: true }) as Dirent[])
      .filter((e) => e.isFile())
      .map((e) => relative(repoRoot, join(e.parentPath, e.name)).split(sep).join('/'))
      .filter((f) => !skip.has(f.split('/')[0]!));
  }
}
const tree = sourceTree();

/** The files a COPY source names: itself, the files under it, or its glob's matches (per segment). */
function filesOf(source: string): string[] {
  const src = source.replace(/^\.\//, '').replace(/\/+$/, '');
  const segments = src.split('/').map((s) => globToRegExp(s, false));
  return tree.filter((f) => {
    const parts = f.split('/');
    return parts.length >= segments.length && segments.every((re, i) => re.test(parts[i]!));
  });
}

const patterns = parseDockerignore(readFileSync(join(repoRoot, '.dockerignore'), 'utf8'));
const dockerfiles = ['Dockerfile', 'examples/payment/Dockerfile'];

describe('docker build contexts (.dockerignore)', () => {
  it('the matcher follows Docker: parents, ** and the last match winning', () => {
    const p = parseDockerignore('*\n!src\n!a/b/*.ts\n**/*.db\n');
    expect(ignored(p, 'README.md')).toBe(true);
    expect(ignored(p, 'docs/x/y.md')).toBe(true);
    expect(ignored(p, 'src/a/b.ts')).toBe(false);
    expect(ignored(p, 'src/a/b.db')).toBe(true);
    expect(ignored(p, 'x.db')).toBe(true);
    expect(ignored(p, 'a/b/c.ts')).toBe(false);
    expect(ignored(p, 'a/b/c/d.ts')).toBe(true); // * stops at /
    expect(ignored(p, 'a/b/c.js')).toBe(true);
  });

  for (const dockerfile of dockerfiles) {
    it(`${dockerfile}: every path it COPYs from the context exists and is sent`, () => {
      const sources = copiedSources(dockerfile);
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) {
        const files = filesOf(source);
        expect(files, `${dockerfile}: COPY ${source} matches nothing in the repository`).not.toEqual([]);
        expect(files.filter((f) => ignored(patterns, f)), `${dockerfile}: COPY ${source}: left out by .dockerignore`).toEqual([]);
      }
    });
  }

  it('sends only what the Dockerfiles COPY: no node_modules, dist, .git, test output, databases', () => {
    for (const path of [
      'node_modules/@grpc/grpc-js/package.json', 'dist/src/main.js', '.git/HEAD', '.tmp/vitest.json', 'coverage/index.html',
      'payment-data/order.db', 'examples/payment/data/credit.db-wal', 'src/inventory.db', 'src/node_modules/x/index.js',
      'test/unit/dag.test.ts', 'bench/RESULTS.md', 'test/chaos/RESULTS.md', 'docs/install.md', 'charts/kubetx/values.yaml',
      'examples/payment/k8s/payment.yaml', 'examples/message/server.ts', 'isolate-0x1.cpuprofile', '.cache/x',
    ]) {
      expect(ignored(patterns, path), path).toBe(true);
    }
    const sent = tree.filter((f) => !ignored(patterns, f));
    const allowed = new Set(dockerfiles.flatMap((d) => copiedSources(d).flatMap(filesOf)));
    expect(sent.filter((f) => !allowed.has(f))).toEqual([]);
  });
});

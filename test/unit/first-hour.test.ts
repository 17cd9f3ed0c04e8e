/**
 * Issue 19, "first hour": what a new user meets in the demo and the examples.
 *
 * - Every example's local default ports are its own: no port is used by two
 *   examples, so two examples (or an example beside the running demo, whose
 *   payment services sit on 50051-50054) can run at once.
 * - The bad-input manifests use names no other manifest under examples/ (nor
 *   hack/demo.ts) uses, so `kubectl apply` of one shows the schema/CEL message
 *   itself, not "field is immutable" against the demo's object.
 * - hack/demo.ts removes what it creates.
 *
 * No control plane needed.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { cleanUp, cleanupPlan, demoPaths } from '../../hack/demo.js';
import { repoRoot } from '../support/testenv-paths.js';

const examplesDir = join(repoRoot, 'examples');

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    if (['node_modules', 'target', '__pycache__', '.venv'].includes(e)) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Ports

/**
 * Where a local port is named:
 *  - a loopback or any-interface host with a port: 127.0.0.1:N, localhost:N, 0.0.0.0:N, [::1]:N
 *    (manifests' `address:` fields, README commands, sources' usage lines);
 *  - a port flag in a command line: --port N, --base-port N, and in README commands --listen :N
 *    (every interface, loopback included);
 *  - a port option's default in a TypeScript source: 'base-port': { …, default: 'N' }.
 * Not counted: Service ports (`port: 50051` of endpoint.service, Deployments in k8s/): each
 * Service and each pod has its own address. Nor the bank-* `--listen` flag default ":50051"
 * in the sources, which is the in-container default (k8s/, Dockerfile); every local command
 * in their READMEs passes --listen explicitly, and those ports are counted. Nor PostgreSQL's
 * 5432: one database server the bank examples share on purpose, not a port an example serves.
 */
const portPatterns: RegExp[] = [
  /(?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]):(\d{2,5})\b/g,
  /--(?:base-)?port[ =](\d{2,5})\b/g,
  /['"]?\b(?:base-)?port['"]?:\s*\{[^}]*default:\s*['"](\d{2,5})['"]/g,
];
const readmeOnly = /--listen[ =]:(\d{2,5})\b/g;
const notExamplePorts = new Set([5432]);

function portsIn(text: string, readme = false): number[] {
  const ports: number[] = [];
  for (const re of readme ? [...portPatterns, readmeOnly] : portPatterns) for (const m of text.matchAll(re)) ports.push(Number(m[1]));
  return ports.filter((p) => p > 0 && !notExamplePorts.has(p));
}

/** README text that is run: the fenced code blocks. */
function codeBlocks(markdown: string): string {
  return [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]).join('\n');
}

const sourceExt = /\.(ts|go|java|py|ya?ml)$/;
const isTest = (rel: string) => /(_test\.go|\.test\.ts)$|(^|\/)tests?\//.test(rel);

/** example name → port → files naming it. */
function examplePorts(): Map<string, Map<number, string[]>> {
  const out = new Map<string, Map<number, string[]>>();
  for (const example of readdirSync(examplesDir).filter((e) => statSync(join(examplesDir, e)).isDirectory())) {
    if (example === 'bad-input') continue; // refused by the API server: nothing ever listens for them
    const ports = new Map<number, string[]>();
    for (const file of walk(join(examplesDir, example))) {
      const rel = relative(examplesDir, file);
      if (rel.split('/').includes('k8s') || isTest(rel)) continue; // in-cluster, or test fixtures
      const readme = file.endsWith('README.md');
      let text: string;
      if (readme) text = codeBlocks(readFileSync(file, 'utf8'));
      else if (sourceExt.test(file)) text = readFileSync(file, 'utf8');
      else continue;
      for (const p of portsIn(text, readme)) ports.set(p, [...new Set([...(ports.get(p) ?? []), rel])]);
    }
    out.set(example, ports);
  }
  return out;
}

describe('example ports', () => {
  const byExample = examplePorts();

  it('the extractor finds the ports it should (so an empty result cannot pass)', () => {
    expect(portsIn('endpoint: {address: "127.0.0.1:50071"}')).toEqual([50071]);
    expect(portsIn("npx tsx x.ts --base-port 50061 --host 127.0.0.1")).toEqual([50061]);
    expect(portsIn('go run . --listen :50091 &', true)).toEqual([50091]);
    expect(portsIn('psql -h localhost:5432')).toEqual([]);
    expect(portsIn("'base-port': { type: 'string', default: '50071' },")).toEqual([50071]);
    expect(portsIn("port: { type: 'string', default: '50081' },")).toEqual([50081]);
    expect(portsIn('endpoint: {service: {name: order, port: 50051}}')).toEqual([]);
    expect(portsIn('--listen 127.0.0.1:0')).toEqual([]);
    expect([...(byExample.get('payment')?.keys() ?? [])].sort()).toEqual(expect.arrayContaining([50051, 50052, 50053, 50054]));
    expect([...(byExample.get('travel')?.keys() ?? [])]).toEqual(expect.arrayContaining([50071, 50072, 50073]));
    expect([...(byExample.get('message')?.keys() ?? [])]).toEqual(expect.arrayContaining([50061, 50062, 50063]));
    expect([...(byExample.get('notify')?.keys() ?? [])]).toEqual([50081]);
    for (const [example, ports] of byExample) expect(ports.size, `${example} names a local port`).toBeGreaterThan(0);
  });

  it('no port is used by two different examples', () => {
    const users = new Map<number, string[]>();
    for (const [example, ports] of byExample) for (const [p, files] of ports) users.set(p, [...(users.get(p) ?? []), `${example} (${files.join(', ')})`]);
    const shared = [...users].filter(([, who]) => who.length > 1).map(([p, who]) => `${p}: ${who.join(' and ')}`);
    expect(shared).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Names

type Obj = any;

function manifestNames(file: string): string[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Obj)
    .filter((o) => o?.kind === 'DistributedTransaction' && typeof o?.metadata?.name === 'string')
    .map((o) => o.metadata.name as string);
}

describe('bad-input names', () => {
  const yamlUnder = (dir: string) => walk(dir).filter((f) => /\.ya?ml$/.test(f));
  const badExamples = yamlUnder(join(examplesDir, 'bad-input'));
  const badCatalogue = yamlUnder(join(repoRoot, 'test/bad-input'));
  const others = yamlUnder(examplesDir).filter((f) => !f.startsWith(join(examplesDir, 'bad-input')));
  const otherNames = new Map<string, string>();
  for (const f of others) for (const n of manifestNames(f)) otherNames.set(n, relative(repoRoot, f));
  // Every quoted string in hack/demo.ts that could be an object name (pay-order-1001, …).
  for (const m of readFileSync(join(repoRoot, 'hack/demo.ts'), 'utf8').matchAll(/['"`/]([a-z0-9][a-z0-9-]*-[0-9]+)['"`]/g)) otherNames.set(m[1]!, 'hack/demo.ts');

  it('finds the names it compares against', () => {
    expect(otherNames.get('pay-order-1001')).toBeDefined();
    expect(otherNames.get('pay-order-1002')).toBeDefined();
    expect(badExamples.length).toBeGreaterThan(0);
    expect(badCatalogue.length).toBeGreaterThan(0);
  });

  it.each([...badExamples, ...badCatalogue].map((f) => relative(repoRoot, f)))('%s uses a name of its own', (rel) => {
    const names = manifestNames(join(repoRoot, rel));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(otherNames.get(n), `${n} is also used by ${otherNames.get(n)}`).toBeUndefined();
  });

  it('no two bad-input files share a name', () => {
    const seen = new Map<string, string>();
    for (const f of [...badExamples, ...badCatalogue]) {
      for (const n of new Set(manifestNames(f))) {
        expect(seen.get(n), `${n}: ${relative(repoRoot, f)}`).toBeUndefined();
        seen.set(n, relative(repoRoot, f));
      }
    }
  });

  it("the README's quoted refusal names the file's object", () => {
    const readme = readFileSync(join(examplesDir, 'bad-input/README.md'), 'utf8');
    for (const m of readme.matchAll(/The DistributedTransaction "([^"]+)" is invalid/g)) {
      expect(badExamples.flatMap(manifestNames)).toContain(m[1]);
    }
  });
});

// ---------------------------------------------------------------------------
// The demo's clean-up

describe('hack/demo.ts removes what it creates', () => {
  const source = readFileSync(join(repoRoot, 'hack/demo.ts'), 'utf8');

  it('everything it writes lives under one run directory', () => {
    const paths = demoPaths('/repo');
    for (const [key, p] of Object.entries(paths)) if (key !== 'runDir') expect(p.startsWith(`${paths.runDir}/`), key).toBe(true);
    // No temp dir of its own besides the control plane's (removed by cp.stop()).
    expect(source).not.toMatch(/mkdtemp|tmpdir\(/);
    expect(source).toMatch(/await cp\?\.stop\(\)/);
  });

  it('stops and cleans up on SIGINT and SIGTERM as well as at the end', () => {
    expect(source).toMatch(/for \(const sig of \['SIGINT', 'SIGTERM'\] as const\)\s*\{\s*process\.on\(sig, \(\) => void stopAll\(\)/);
    expect(source).toMatch(/finally \{\s*if \(!keep \|\| process\.exitCode\) await stopAll\(\);/);
    expect(source).toMatch(/const left = cleanUp\(paths, keep\);/);
  });

  const layout = () => {
    const root = mkdtempSync(join(tmpdir(), 'kubetx-first-hour-'));
    const paths = demoPaths(root);
    mkdirSync(paths.dbDir, { recursive: true });
    for (const db of ['order', 'inventory', 'credit', 'warehouse']) writeFileSync(join(paths.dbDir, `${db}.db`), '');
    for (const f of [paths.operatorLog, paths.participantsLog, paths.kubeconfig, paths.pidFile]) writeFileSync(f, 'x');
    return { root, paths };
  };

  it('without --keep nothing is left', () => {
    const { root, paths } = layout();
    try {
      expect(cleanupPlan(paths, false).leave).toEqual([]);
      expect(cleanUp(paths, false)).toEqual([]);
      expect(existsSync(paths.runDir)).toBe(false);
      expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('with --keep only the two logs are left, and it says which', () => {
    const { root, paths } = layout();
    try {
      const left = cleanUp(paths, true);
      expect(left.sort()).toEqual([paths.operatorLog, paths.participantsLog].sort());
      expect(readdirSync(paths.runDir).sort()).toEqual(['operator.log', 'participants.log']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

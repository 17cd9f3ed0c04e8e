/**
 * Summarizes a V8 .cpuprofile: where the time went, by function (self time),
 * by package (self time grouped by node_modules package, node core module or
 * kubetx source file), and the inclusive time of chosen kubetx functions.
 *
 *   npx tsx bench/profile-summary.ts path/to/file.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Wall time the main thread was busy (total minus idle). */
  busyMs: number;
  idleMs: number;
  gcMs: number;
  topSelf: Row[];
  byPackage: Row[];
  /** Time with the package anywhere on the stack (native frames folded into their caller's package). */
  byPackageInclusive: Row[];
  inclusive: Row[];
}

const repoMarker = '/work/main/';

function where(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return `${pkg}/${rest.slice(rest[0]!.startsWith('@') ? 2 : 1).join('/')}`;
  }
  const i = url.indexOf('/src/');
  if (i >= 0) return url.slice(i + 1);
  if (url.includes(repoMarker)) return url.slice(url.indexOf(repoMarker) + repoMarker.length);
  return url.replace(/^file:\/\//, '');
}

function packageOf(cf: CallFrame): string {
  const fn = cf.functionName;
  if (fn === '(idle)' || fn === '(garbage collector)' || fn === '(program)' || fn === '(root)') return fn;
  const url = cf.url;
  if (!url) return '(V8 builtins / native)';
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    // node:internal/tls/secure-context → internal/tls; node:internal/buffer → internal/buffer
    return `node core: ${parts[0] === 'internal' && parts.length > 1 ? `internal/${parts[1]!.replace(/\.js$/, '')}` : parts[0]}`;
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const i = url.indexOf('/src/');
  if (i >= 0) return `kubetx ${url.slice(i + 1).replace(/\/[^/]+$/, '/')}`;
  return where(url);
}

function keyOf(cf: CallFrame): string {
  const fn = cf.functionName || '(anonymous)';
  const w = where(cf.url);
  return w ? `${fn} ${w}:${cf.lineNumber + 1}` : fn;
}

export function summarize(p: CpuProfile, top = 25, inclusiveOf: RegExp = /kubetx src/): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  /** A native frame (no script) is charged to the package of the nearest JavaScript caller: "native in node core: _tls_common". */
  const pkgOf = (id: number): string => {
    const cf = byId.get(id)!.callFrame;
    const own = packageOf(cf);
    if (own !== '(V8 builtins / native)') return own;
    for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
      const pcf = byId.get(cur)!.callFrame;
      if (pcf.url) return `native in ${packageOf(pcf)}`;
    }
    return own;
  };
  const selfById = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; attribute the next delta to this sample (what DevTools does).
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    selfById.set(p.samples[i]!, (selfById.get(p.samples[i]!) ?? 0) + dt);
  }
  const self = new Map<string, number>();
  const pkg = new Map<string, number>();
  const pkgIncl = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const [id, ms] of selfById) {
    const cf = byId.get(id)!.callFrame;
    total += ms;
    if (cf.functionName === '(idle)') idle += ms;
    if (cf.functionName === '(garbage collector)') gc += ms;
    self.set(keyOf(cf), (self.get(keyOf(cf)) ?? 0) + ms);
    pkg.set(pkgOf(id), (pkg.get(pkgOf(id)) ?? 0) + ms);
    // Inclusive by package: each package (native frames folded into their caller's) once per sample's stack.
    const seenPkg = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) seenPkg.add(pkgOf(cur).replace(/^native in /, ''));
    for (const k of seenPkg) pkgIncl.set(k, (pkgIncl.get(k) ?? 0) + ms);
  }
  // Inclusive time of kubetx's own functions: each function counted once per sample's stack.
  const inclusive = new Map<string, number>();
  for (const [id, ms] of selfById) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      seen.add(`${cf.functionName || '(anonymous)'} [${packageOf(cf)}]`);
    }
    for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>, n: number, filter: (k: string) => boolean = () => true): Row[] =>
    [...m].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => ({ name, ms, pct: (100 * ms) / busy }));
  return {
    totalMs: total,
    busyMs: busy,
    idleMs: idle,
    gcMs: gc,
    topSelf: rows(self, top, (k) => k !== '(idle)'),
    byPackage: rows(pkg, 20, (k) => k !== '(idle)'),
    // internal/process is the task queue every async continuation starts from: on every stack, says nothing.
    byPackageInclusive: rows(pkgIncl, 15, (k) => !['(idle)', '(root)', '(program)', '(garbage collector)', '(V8 builtins / native)', 'node core: internal/process', 'node core: internal/timers'].includes(k)),
    inclusive: rows(inclusive, 20, (k) => inclusiveOf.test(k) && !k.startsWith('(anonymous)') && !k.startsWith('(idle)')),
  };
}

export function summaryMarkdown(s: ProfileSummary): string {
  const t = (rows: Row[], head: string) =>
    [`| ${head} | ms | % of busy |`, '| --- | ---: | ---: |', ...rows.map((r) => `| \`${r.name.replace(/\|/g, '\\|')}\` | ${r.ms.toFixed(0)} | ${r.pct.toFixed(1)} |`)].join('\n');
  return [
    `Profiled ${(s.totalMs / 1000).toFixed(1)} s of the operator's main thread: busy ${(s.busyMs / 1000).toFixed(1)} s ` +
      `(${((100 * s.busyMs) / s.totalMs).toFixed(0)} %), idle ${(s.idleMs / 1000).toFixed(1)} s, GC ${(s.gcMs / 1000).toFixed(1)} s (${((100 * s.gcMs) / s.busyMs).toFixed(1)} % of busy).`,
    '',
    'Self time by package / module (a native frame is charged to its JavaScript caller\'s module):',
    '',
    t(s.byPackage, 'package'),
    '',
    'Inclusive time by package / module (on the stack at all):',
    '',
    t(s.byPackageInclusive, 'package'),
    '',
    'Top functions by self time:',
    '',
    t(s.topSelf, 'function (file:line)'),
    '',
    'Inclusive time of kubetx functions (synchronous part only: an async function\'s frames end at its first await):',
    '',
    t(s.inclusive, 'function [where]'),
  ].join('\n');
}

if (process.argv[1] && /profile-summary\.ts$/.test(process.argv[1]) && process.argv[2]) {
  const p = JSON.parse(readFileSync(process.argv[2], 'utf8')) as CpuProfile;
  process.stdout.write(`${summaryMarkdown(summarize(p, Number(process.argv[3] ?? 25)))}\n`);
}

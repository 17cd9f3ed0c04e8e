/**
 * The Helm chart in tests: helm and kubectl from the testenv build, rendering
 * charts/kubetx with given values, applying manifests server-side, and a
 * kubeconfig that authenticates as a ServiceAccount (TokenRequest API).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { installCrds } from './crds.js';
import { repoRoot, testenvBinDir, testenvKubectl } from './testenv-paths.js';

export const chartDir = join(repoRoot, 'charts/kubetx');

/** The server version the chart is rendered for (the test control plane's). */
export const kubeVersion = 'v1.37.2';

/** What `helm template` of release "kubetx" renders with the default values, as "Kind/name", sorted. */
export const DEFAULT_OBJECTS = [
  'ClusterRole/kubetx',
  'ClusterRole/kubetx-edit',
  'ClusterRole/kubetx-view',
  'ClusterRoleBinding/kubetx',
  'CustomResourceDefinition/distributedtransactions.kubetx.io',
  'Deployment/kubetx',
  'MutatingAdmissionPolicy/kubetx-finalizer',
  'MutatingAdmissionPolicyBinding/kubetx-finalizer',
  'Role/kubetx-leader-election',
  'RoleBinding/kubetx-leader-election',
  'Service/kubetx-metrics',
  'ServiceAccount/kubetx',
  'ValidatingAdmissionPolicy/kubetx-spec-guard',
  'ValidatingAdmissionPolicy/kubetx-status-guard',
  'ValidatingAdmissionPolicyBinding/kubetx-spec-guard',
  'ValidatingAdmissionPolicyBinding/kubetx-status-guard',
];

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let helmHome: string | undefined;

/** Runs the testenv helm with its cache/config/data in a private temporary directory. */
export function helm(args: string[], input?: string): Run {
  helmHome ??= mkdtempSync(join(tmpdir(), 'kubetx-helm-'));
  const r = spawnSync(join(testenvBinDir(), 'helm'), args, {
    input,
    encoding: 'utf8',
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
    },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function kubectl(kubeconfig: string, args: string[], input?: string): Run {
  const r = spawnSync(testenvKubectl(), ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export interface Rendered {
  yaml: string;
  objects: K8sObject[];
  /** The one object of this kind (and name, when given); throws when absent. */
  one<T = K8sObject>(kind: string, name?: string): T & K8sObject;
  all<T = K8sObject>(kind: string): Array<T & K8sObject>;
}

export interface RenderOptions {
  release: string;
  namespace: string;
  values?: Record<string, unknown>;
  /** The cluster version helm renders for (default: the test control plane's). */
  kubeVersion?: string;
  /** Another checkout's chart directory (the benchmark's A/B baseline). @default charts/kubetx here */
  chart?: string;
}

/** `helm template` (no CRDs); values go in as JSON on stdin. Returns the run for failures. */
export function templateChart(opts: RenderOptions): Run {
  return helm(
    ['template', opts.release, opts.chart ?? chartDir, '--namespace', opts.namespace, '--kube-version', opts.kubeVersion ?? kubeVersion, '--values', '-'],
    JSON.stringify(opts.values ?? {}),
  );
}

export function renderChart(opts: RenderOptions): Rendered {
  const r = templateChart(opts);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => {
      if (d.errors.length) throw new Error(`rendered YAML: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
  const all = <T>(kind: string) => objects.filter((o) => o.kind === kind) as Array<T & K8sObject>;
  return {
    yaml: r.stdout,
    objects,
    all,
    one: <T>(kind: string, name?: string) => {
      const found = all<T>(kind).filter((o) => name === undefined || o.metadata.name === name);
      if (found.length !== 1) throw new Error(`want one ${kind}${name ? ` ${name}` : ''}, rendered ${found.length}`);
      return found[0]!;
    },
  };
}

/** The operator container of the rendered Deployment. */
export function operatorContainer(r: Rendered): k8s.V1Container {
  const d = r.one<{ spec: k8s.V1DeploymentSpec }>('Deployment');
  const c = d.spec.template.spec?.containers.find((x) => x.name === 'operator');
  if (!c) throw new Error('the Deployment has no container named operator');
  return c;
}

/**
 * The rendered operator arguments, to run src/main.ts with exactly what the
 * chart would pass — minus the bind addresses (tests bind to free loopback ports).
 */
export function operatorArgs(r: Rendered): string[] {
  return (operatorContainer(r).args ?? []).filter((a) => !/^--(metrics-bind-address|health-probe-bind-address)(=|$)/.test(a));
}

/** kubectl apply --server-side of a manifest stream; throws with kubectl's stderr on failure. */
export function applyServerSide(kubeconfig: string, yaml: string): Run {
  const r = kubectl(kubeconfig, ['apply', '--server-side', '--field-manager=kubetx-chart-test', '-f', '-'], yaml);
  if (r.status !== 0) throw new Error(`kubectl apply --server-side failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/**
 * The chart's finalizer policy (MutatingAdmissionPolicy and its binding), bound to `namespace` alone
 * so that other namespaces sharing the control plane keep the operator's own finalizer write, applied
 * server-side. Returns what was applied: nothing when the chart renders no policy.
 */
export function applyFinalizerPolicy(kubeconfig: string, namespace: string, opts: { release: string; chart?: string }): K8sObject[] {
  const rendered = renderChart({ release: opts.release, namespace: 'kubetx-system', chart: opts.chart });
  const objs = rendered.objects.filter((o) => o.kind.startsWith('MutatingAdmissionPolicy'));
  if (!objs.length) return [];
  for (const o of objs) {
    if (o.kind === 'MutatingAdmissionPolicyBinding') {
      (o.spec as Record<string, unknown>).matchResources = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } };
    }
  }
  applyServerSide(kubeconfig, objs.map((o) => stringify(o)).join('---\n'));
  return objs;
}

/** The ValidatingAdmissionPolicy `<fullname>-<name>` and its binding as rendered; none when the chart renders none. */
export function validatingPolicy(r: Rendered, name: string): K8sObject[] {
  return r.objects.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy') && o.metadata.name.endsWith(`-${name}`));
}

/**
 * The CRDs as the chart at `chart` installs them, and its spec guard
 * (ValidatingAdmissionPolicy + binding, cluster-wide) when it renders one:
 * with the guard on, the chart's CRD leaves out the spec transition rules.
 * A chart that renders no spec guard (or no CRD template: charts before
 * templates/crds.yaml) gets crds/ of its checkout `root`, as before. `chart`:
 * another chart directory than root's. Returns whether the spec guard was
 * applied.
 */
export async function installCrdsAsChart(kubeconfig: string, opts: { release: string; root: string; chart?: string }): Promise<boolean> {
  const rendered = renderChart({ release: opts.release, namespace: 'kubetx-system', chart: opts.chart ?? join(opts.root, 'charts/kubetx') });
  const guard = validatingPolicy(rendered, 'spec-guard');
  const crds = rendered.all('CustomResourceDefinition');
  if (!guard.length || !crds.length) {
    await installCrds(kubeconfig, join(opts.root, 'crds'));
    return false;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-chart-crds-'));
  try {
    crds.forEach((c, i) => writeFileSync(join(dir, `${i}.yaml`), stringify(c)));
    await installCrds(kubeconfig, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  applyServerSide(kubeconfig, guard.map((o) => stringify(o)).join('---\n'));
  return true;
}

/**
 * A kubeconfig file that authenticates as a ServiceAccount with a bound token
 * from the TokenRequest API; server and CA are the admin kubeconfig's.
 */
export async function serviceAccountKubeconfig(admin: k8s.KubeConfig, namespace: string, serviceAccount: string): Promise<{ path: string; token: string }> {
  const res = await admin.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = res.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-sa-'));
  const path = join(dir, 'kubeconfig');
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:
    server: ${cluster.server}
${ca ? `    certificate-authority-data: ${ca}\n` : ''}users:
- name: "${user}"
  user:
    token: ${token}
contexts:
- name: sa
  context: {cluster: target, user: "${user}"}
current-context: sa
`,
    { mode: 0o600 },
  );
  return { path, token };
}

export function loadKubeconfig(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** promtool from hack/promtool.sh's cache; throws with the command to run when it is not built. */
export function promtoolPath(): string {
  const r = spawnSync('bash', [join(repoRoot, 'hack/promtool.sh'), '--path'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`promtool is not built: run hack/promtool.sh (hack/testenv.sh builds it too)\n${r.stderr}`);
  return r.stdout.trim();
}

export function promtool(args: string[], cwd?: string): Run {
  const r = spawnSync(promtoolPath(), args, { encoding: 'utf8', cwd });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One sample of a Prometheus text exposition: metric name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** The metric family's # TYPE (a histogram's _bucket/_sum/_count are "histogram"). */
  type: string;
}

/** Parses the Prometheus text format (what /metrics serves). */
export function parseExposition(text: string): Sample[] {
  const types = new Map<string, string>();
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const name = m[1]!;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count|total|created)$/, '');
    out.push({ name, labels, value: Number(m[3]), type: types.get(family) ?? types.get(name) ?? 'untyped' });
  }
  return out;
}

const promqlWords = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan', 'le',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not
 * functions (followed by "("), keywords, label names (inside {} or a by/on/…
 * list), strings, durations or Grafana variables.
 */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^{}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\w)(\s*\()?/g)) {
    if (m[2]) continue; // a function call
    if (promqlWords.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names].sort();
}

// ---- the chart's PrometheusRule under promtool ----------------------------

/** The release the rules are rendered for, and so the labels their selector wants: job="kubetx-metrics", namespace="kubetx-system". */
export const MONITORED = { job: 'kubetx-metrics', namespace: 'kubetx-system' } as const;

export interface AlertRule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface PrometheusRule {
  spec: { groups: Array<{ name: string; rules: AlertRule[] }> };
}

/** A promtool input series. */
export interface InputSeries {
  series: string;
  values: string;
}

/**
 * The chart's PrometheusRule (release "kubetx" in MONITORED.namespace) and
 * `promtool test rules` on it, with the files promtool reads in `dir`.
 */
export class AlertRules {
  rules!: PrometheusRule;

  constructor(private readonly dir: string) {
    this.render();
  }

  /** Renders the rules again with these prometheusRule values over the chart's defaults (enabled). */
  render(values: Record<string, unknown> = {}): this {
    const prometheusRule = { enabled: true, ...values };
    this.rules = renderChart({ release: 'kubetx', namespace: MONITORED.namespace, values: { prometheusRule } }).one<PrometheusRule>('PrometheusRule');
    return this;
  }

  get all(): AlertRule[] {
    return this.rules.spec.groups.flatMap((g) => g.rules);
  }

  get alertNames(): string[] {
    return this.all.map((r) => r.alert).filter((a): a is string => !!a);
  }

  /** The rules as the chart renders them, annotations dropped (promtool compares them verbatim; `check rules` validates their templates). */
  file(withAnnotations: boolean): string {
    const groups = this.rules.spec.groups.map((g) => ({
      name: g.name,
      rules: g.rules.map((r) => (withAnnotations ? r : { ...r, annotations: undefined })),
    }));
    const path = join(this.dir, withAnnotations ? 'rules.yaml' : 'rules-bare.yaml');
    writeFileSync(path, stringify({ groups }));
    return path;
  }

  /** `promtool test rules` of these tests (1m evaluation interval) on the rules as rendered now. */
  test(tests: unknown[]): { status: number | null; out: string } {
    const file = join(this.dir, `test-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, stringify({ rule_files: [this.file(false)], evaluation_interval: '1m', tests }, { lineWidth: 0 }));
    const r = promtool(['test', 'rules', file], this.dir);
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
  }

  /** alert_rule_test entries: at `minute`, each alert of `alerts` (default: all) fires with exactly the listed label sets (none: not firing). */
  expectAt(minute: number, firing: Record<string, Array<Record<string, string>>>, alerts: string[] = this.alertNames) {
    return alerts.map((alertname) => ({
      eval_time: `${minute}m`,
      alertname,
      exp_alerts: (firing[alertname] ?? []).map((labels) => ({ exp_labels: labels })),
    }));
  }
}

// ---- promtool input series from scrapes ------------------------------------

const isCounter = (s: Sample) => s.type === 'counter' || s.type === 'histogram' || s.type === 'summary' && /_(sum|count)$/.test(s.name);
const sampleKey = (s: Sample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;

/** The series as the ServiceMonitor's scrape labels it (MONITORED, instance and pod). */
export function seriesName(s: Sample, instance: string): string {
  const labels = { ...s.labels, ...MONITORED, instance, pod: instance };
  return `${s.name}{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`;
}

/** One stretch of a timeline: `minutes` samples (1m steps) ending at the values of `scrape`. */
export interface Phase {
  scrape: Sample[];
  minutes: number;
  /**
   * Counters climb linearly from the previous phase's values (0 for a series
   * it lacks) to this scrape's over the phase, what the operator counted
   * between the two scrapes spread out, while gauges take this scrape's values
   * at once. Otherwise every series holds this scrape's value.
   */
  climb?: boolean;
}

/** promtool input_series of one process scraped several times, phase after phase; a series a scrape lacks is missing ("_") for its phase. */
export function timeline(phases: Phase[], instance: string): InputSeries[] {
  const maps = phases.map((p) => new Map(p.scrape.map((s) => [sampleKey(s), s])));
  const keys = new Set(maps.flatMap((m) => [...m.keys()]));
  const out: InputSeries[] = [];
  for (const k of keys) {
    const values: string[] = [];
    phases.forEach((p, j) => {
      const b = maps[j]!.get(k);
      const from = j > 0 ? maps[j - 1]!.get(k)?.value ?? 0 : 0;
      for (let i = 1; i <= p.minutes; i++) {
        if (!b) values.push('_');
        else if (p.climb && isCounter(b)) values.push(String(from + ((b.value - from) * i) / p.minutes));
        else values.push(String(b.value));
      }
    });
    const s = maps.map((m) => m.get(k)).find((x) => x !== undefined)!;
    out.push({ series: seriesName(s, instance), values: values.join(' ') });
  }
  return out;
}

/** Every series of one scrape holding its value for n samples. */
export function held(samples: Sample[], instance: string, n: number): InputSeries[] {
  return timeline([{ scrape: samples, minutes: n }], instance);
}

/**
 * What the CRD's validation costs the API server on a status write.
 *
 * The same CRD is installed under extra API groups (so every variant lives on
 * one control plane at once): as shipped; with the create-only rules run on
 * every write (as before they were guarded by optionalOldSelf); without the
 * rules inside branches, on spec and the branch list, in spec; without any.
 * And the CRD as shipped written by a JSON merge patch (status and the
 * resourceVersion precondition) instead of the operator's PUT. For 4 and 16 branches, 32 objects per variant (the
 * spec the benchmark creates, the status of a real committed transaction) are
 * written through PUT .../status by one writer each, variants in alternating
 * order, and kube-apiserver's CPU per successful write is read from /proc.
 * The difference between variants is what the rules cost on an unchanged
 * spec; "no CEL" is the floor any rule change can reach.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { DistributedTransaction, TransactionStatus } from '../src/api/types.js';
import { renderChart } from '../test/support/chart.js';
import { repoRoot } from '../test/support/testenv-paths.js';
import { cpuDelta, cpuSnapshot } from './lib/cpu.js';
import { managedFieldsBytes, newNamespace, type Api } from './lib/kube.js';
import { transaction } from './lib/manifests.js';
import { createTargets, statusWriteLoop } from './lib/status-writes.js';

export interface RulesEnv {
  api: Api;
  controlPlane: { etcd?: number; apiserver?: number };
  addresses: string[];
  /** The status of a real committed transaction with this many branches. */
  committedStatus(branches: number): Promise<TransactionStatus>;
  say(line: string): void;
}

interface Variant {
  label: string;
  group: string;
  strip: (crd: Crd) => void;
  /** How the status is written: PUT of the object (what the operator does), or a JSON merge patch of status + resourceVersion. */
  how?: 'put' | 'patch';
  /** The status written, changed from the committed one (to price a field's share of the object). */
  status?: (s: TransactionStatus) => TransactionStatus;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Crd = any;

const WRITERS = 32;
/** KUBETX_BENCH_RULES_ONLY=a,b: only the variants whose label contains one of these (and the shipped one). */
const ONLY = (process.env.KUBETX_BENCH_RULES_ONLY ?? '').split(',').filter(Boolean);
const WRITE_MS = Number(process.env.KUBETX_BENCH_RULES_MS ?? 6_000);
const ROUNDS = 2;

function dropValidations(node: unknown): void {
  if (Array.isArray(node)) node.forEach(dropValidations);
  else if (node && typeof node === 'object') {
    delete (node as Record<string, unknown>)['x-kubernetes-validations'];
    Object.values(node).forEach(dropValidations);
  }
}

type Rule = { rule: string; optionalOldSelf?: boolean };

/** Calls `visit` for every CEL rule at or under `node`. */
function eachRule(node: unknown, visit: (r: Rule) => void): void {
  if (Array.isArray(node)) node.forEach((n) => eachRule(n, visit));
  else if (node && typeof node === 'object') {
    ((node as Record<string, unknown>)['x-kubernetes-validations'] as Rule[] | undefined)?.forEach(visit);
    Object.values(node).forEach((n) => eachRule(n, visit));
  }
}

/** Undoes the create-only guard (`oldSelf.hasValue() || (…)`): the rule runs on every write again. */
function unguard(node: unknown): void {
  eachRule(node, (r) => {
    const m = /^oldSelf\.hasValue\(\) \|\| \((.*)\)$/.exec(r.rule);
    if (r.optionalOldSelf && m) {
      r.rule = m[1]!;
      delete r.optionalOldSelf;
    }
  });
}

/** Makes every rule under `node` that does not use oldSelf create-only (`oldSelf.hasValue() || (…)`). */
function guard(node: unknown): void {
  eachRule(node, (r) => {
    if (r.rule.includes('oldSelf')) return;
    r.rule = `oldSelf.hasValue() || (${r.rule})`;
    r.optionalOldSelf = true;
  });
}

/** A list map keyed by name, or an atomic list. */
function setListType(list: Crd, type: 'map' | 'atomic'): void {
  list['x-kubernetes-list-type'] = type;
  if (type === 'map') list['x-kubernetes-list-map-keys'] = ['name'];
  else delete list['x-kubernetes-list-map-keys'];
}

/** A transition rule (reads oldSelf, not guarded as create-only): the spec's immutability rules. */
const isTransitionRule = (r: Rule) => !r.optionalOldSelf && r.rule.includes('oldSelf');

const schemaOf = (crd: Crd) => crd.spec.versions[0].schema.openAPIV3Schema;

/** The terminal-phase rule before 2026-12-07 afternoon: the phase read inside the loop, once per branch (up to five times). */
const TERMINAL_PHASE_PER_BRANCH =
  "!has(self.status) || !has(self.status.phase) || !(self.status.phase in ['Committed', 'Aborted', 'Completed', 'Compensated', 'Delivered']) || " +
  '(has(self.status.branches) && size(self.status.branches) == size(self.spec.branches) && self.status.branches.all(b, has(b.state) && (' +
  "self.status.phase == 'Committed' ? b.state == 'Confirmed' : self.status.phase == 'Aborted' ? b.state == 'Cancelled' : " +
  "self.status.phase == 'Completed' ? b.state == 'Executed' : self.status.phase == 'Compensated' ? b.state in ['Compensated', 'Pending', 'Refused'] : " +
  "b.state == 'Delivered')))";

/**
 * The per-branch rules as they were before 2026-12-07 afternoon: on the items of spec.branches (and
 * their endpoint), where no create-only guard can reach them, instead of create-only rules on spec.
 */
function perBranchRulesOnItems(crd: Crd): void {
  const spec = schemaOf(crd).properties.spec;
  const moved = ['has(b.endpoint.service) != has(b.endpoint.address)', '!(has(b.payload) && has(b.payloadFrom))', '!(b.name in b.dependsOn)'];
  spec['x-kubernetes-validations'] = spec['x-kubernetes-validations'].filter((r: Rule) => !moved.some((m) => r.rule.includes(m)));
  const items = spec.properties.branches.items;
  items['x-kubernetes-validations'] = [
    { rule: '!(has(self.payload) && has(self.payloadFrom))', message: 'set payload or payloadFrom, not both', fieldPath: '.payloadFrom' },
    { rule: '!has(self.dependsOn) || !(self.name in self.dependsOn)', messageExpression: "'branch \"' + self.name + '\" must not depend on itself'", fieldPath: '.dependsOn' },
  ];
  items.properties.endpoint['x-kubernetes-validations'] = [{ rule: 'has(self.service) != has(self.address)', message: 'exactly one of endpoint.service or endpoint.address must be set' }];
}

let chartSchema: unknown;
/**
 * The schema as the chart renders it with its defaults (specGuard.enabled: without the spec's
 * transition rules, templates/crds.yaml), rather than a second copy of the chart's filter here.
 */
function asTheChartRenders(crd: Crd): void {
  chartSchema ??= renderChart({ release: 'rules', namespace: 'kubetx-system' }).one<Crd>('CustomResourceDefinition').spec.versions[0].schema;
  crd.spec.versions[0].schema = structuredClone(chartSchema);
}

const ALL_VARIANTS: Variant[] = [
  { label: 'as shipped', group: 'kubetx.io', strip: () => undefined },
  { label: 'as shipped, written by merge patch (status + resourceVersion)', group: 'kubetx.io', strip: () => undefined, how: 'patch' },
  { label: 'create-only rules unguarded (run on every write)', group: 'unguarded.rules.bench', strip: (crd) => unguard(schemaOf(crd)) },
  {
    label: 'no CEL rules inside spec.branches[*]',
    group: 'noitems.rules.bench',
    strip: (crd) => dropValidations(schemaOf(crd).properties.spec.properties.branches.items),
  },
  {
    label: 'no CEL rules on spec and spec.branches themselves',
    group: 'nolist.rules.bench',
    strip: (crd) => {
      const spec = schemaOf(crd).properties.spec;
      delete spec['x-kubernetes-validations'];
      delete spec.properties.branches['x-kubernetes-validations'];
    },
  },
  {
    // Server-side apply tracks every leaf of a granular list in metadata.managedFields; an atomic list is one entry.
    label: 'status.branches a list map keyed by name (as before ce1ac96)',
    group: 'listmap.rules.bench',
    strip: (crd) => setListType(schemaOf(crd).properties.status.properties.branches, 'map'),
  },
  {
    label: 'conditions an atomic list too',
    group: 'atomiclists.rules.bench',
    strip: (crd) => setListType(schemaOf(crd).properties.status.properties.conditions, 'atomic'),
  },
  {
    label: 'status an atomic map (managedFields: f:status only)',
    group: 'atomicstatus.rules.bench',
    strip: (crd) => {
      schemaOf(crd).properties.status['x-kubernetes-map-type'] = 'atomic';
    },
  },
  {
    // What --call-history all writes for a committed TCC: each branch's Try and Confirm, both ok.
    label: 'as shipped, status with --call-history all (2 ok records per branch)',
    group: 'kubetx.io',
    strip: () => undefined,
    status: (s) => ({
      ...s,
      branches: s.branches?.map((b) => ({
        ...b,
        history: ['Try', 'Confirm'].map((method) => ({ attempt: 1, method, outcome: 'ok', time: b.lastAttemptTime ?? s.startTime ?? new Date().toISOString() })),
      })),
    }),
  },
  {
    // Items of a list map correlate with their old selves by key, so a create-only guard can skip them on updates
    // (in an atomic list oldSelf is never there and the guard does nothing).
    label: 'spec.branches a list map keyed by name, its item rules create-only',
    group: 'specmap.rules.bench',
    strip: (crd) => {
      const l = schemaOf(crd).properties.spec.properties.branches;
      setListType(l, 'map');
      guard(l.items);
    },
  },
  {
    label: 'no immutability (transition) rules on spec (as the chart installs it with its spec guard)',
    group: 'noimmutable.rules.bench',
    strip: (crd) => asTheChartRenders(crd),
  },
  {
    label: 'the chart\'s, and no CEL rules inside spec.branches[*]',
    group: 'chartnoitems.rules.bench',
    strip: (crd) => {
      asTheChartRenders(crd);
      dropValidations(schemaOf(crd).properties.spec.properties.branches.items);
    },
  },
  {
    label: "spec's immutability rules as one conjunction",
    group: 'oneimmutable.rules.bench',
    strip: (crd) => {
      const spec = schemaOf(crd).properties.spec;
      const rules: Rule[] = spec['x-kubernetes-validations'];
      const transition = rules.filter(isTransitionRule);
      spec['x-kubernetes-validations'] = [
        ...rules.filter((r) => !transition.includes(r)),
        { rule: transition.map((r) => `(${r.rule})`).join(' && '), message: 'spec is immutable after creation' },
      ];
    },
  },
  {
    label: 'no create-only (optionalOldSelf) rules on spec',
    group: 'nocreateonly.rules.bench',
    strip: (crd) => {
      const spec = schemaOf(crd).properties.spec;
      spec['x-kubernetes-validations'] = spec['x-kubernetes-validations'].filter((r: { optionalOldSelf?: boolean }) => !r.optionalOldSelf);
      spec.properties.branches['x-kubernetes-validations'] = [];
    },
  },
  {
    label: "the chart's, and no scalar CEL rules inside spec.branches[*] (durations, address port)",
    group: 'chartnoscalaritems.rules.bench',
    strip: (crd) => {
      asTheChartRenders(crd);
      const items = schemaOf(crd).properties.spec.properties.branches.items;
      const p = items.properties;
      for (const node of [p.callTimeout, p.endpoint.properties.address, p.retry.properties.initialInterval, p.retry.properties.maxInterval]) delete node['x-kubernetes-validations'];
    },
  },
  {
    label: "the chart's, with the terminal-phase rule as before (the phase read once per branch)",
    group: 'chartphase.rules.bench',
    strip: (crd) => {
      asTheChartRenders(crd);
      schemaOf(crd)['x-kubernetes-validations'][0].rule = TERMINAL_PHASE_PER_BRANCH;
    },
  },
  {
    label: "the chart's, with the per-branch rules on spec.branches[*] as before (every status write, every branch)",
    group: 'chartitems.rules.bench',
    strip: (crd) => {
      asTheChartRenders(crd);
      perBranchRulesOnItems(crd);
    },
  },
  {
    label: "the chart's, with both as before",
    group: 'chartboth.rules.bench',
    strip: (crd) => {
      asTheChartRenders(crd);
      schemaOf(crd)['x-kubernetes-validations'][0].rule = TERMINAL_PHASE_PER_BRANCH;
      perBranchRulesOnItems(crd);
    },
  },
  { label: 'no CEL rules in spec', group: 'nospec.rules.bench', strip: (crd) => dropValidations(schemaOf(crd).properties.spec) },
  { label: 'no CEL rules at all', group: 'nocel.rules.bench', strip: (crd) => dropValidations(schemaOf(crd)) },
];

async function installVariant(api: Api, v: Variant): Promise<void> {
  if (v.group === 'kubetx.io') return;
  const crd: Crd = parse(readFileSync(join(repoRoot, 'crds/kubetx.io_distributedtransactions.yaml'), 'utf8'));
  crd.metadata = { name: `${crd.spec.names.plural}.${v.group}` };
  crd.spec.group = v.group;
  v.strip(crd);
  await api.json('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  // Set-up, not a measurement: wait until the API server serves the new group.
  for (let i = 0; ; i++) {
    const r = await api.raw('GET', `/apis/${v.group}/v1alpha1/distributedtransactions`);
    if (r.status === 200) return;
    if (i > 100) throw new Error(`CRD ${crd.metadata.name} not served: ${r.status} ${r.body.slice(0, 200)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function writeFor(env: RulesEnv, v: Variant, ns: string, branches: number, status: TransactionStatus): Promise<{ perWrite: number; perCreate: number; writes: number; errors: number; bytes: number; managedBytes: number }> {
  const collection = `/apis/${v.group}/v1alpha1/namespaces/${ns}/distributedtransactions`;
  const apiVersion = `${v.group}/v1alpha1`;
  const cpuCreate0 = cpuSnapshot(env.controlPlane);
  const targets = await createTargets(WRITERS, (i) =>
    env.api.json<DistributedTransaction>('POST', collection, { ...transaction(`${v.group.split('.')[0]}-${branches}-${i}-${Date.now()}`, ns, { branches, addresses: env.addresses }), apiVersion }),
  );
  // The creates are one after the other: this includes the API server's idle CPU over their time (a few %).
  const perCreate = cpuDelta(cpuCreate0, cpuSnapshot(env.controlPlane), WRITERS).apiserver;
  let reported = 0;
  const cpu0 = cpuSnapshot(env.controlPlane);
  const { ok, conflicts, errors } = await statusWriteLoop({
    api: env.api,
    collection,
    apiVersion,
    namespace: ns,
    targets,
    status,
    durationMs: WRITE_MS,
    tag: 'rules write',
    how: v.how,
    onError: (code, body) => {
      if (reported++ < 2) env.say(`rules: ${v.label}: status write ${code}: ${body.slice(0, 300)}`);
    },
  });
  const perWrite = cpuDelta(cpu0, cpuSnapshot(env.controlPlane), ok || 1).apiserver;
  // What the API server stores and sends to watchers after these writes (managedFields included).
  const stored = await env.api.json<DistributedTransaction>('GET', `${collection}/${targets[0]!.name}`);
  const bytes = JSON.stringify(stored).length;
  const managedBytes = managedFieldsBytes(stored);
  return { perWrite, perCreate, writes: ok, errors: conflicts + errors, bytes, managedBytes };
}

export async function rulesFigure(env: RulesEnv): Promise<string> {
  const VARIANTS = ALL_VARIANTS.filter((v, i) => i === 0 || ONLY.length === 0 || ONLY.some((o) => v.label.includes(o)));
  for (const v of VARIANTS) await installVariant(env.api, v);
  const ns = await newNamespace(env.api, 'bench-rules');
  const rows = [
    '| branches | CRD | kube-apiserver CPU ms per status write | ÷ as shipped | writes measured | object bytes (of it managedFields) | CPU ms per create |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const b of [4, 16]) {
    const status = await env.committedStatus(b);
    const sums = new Map<string, { cpu: number; writes: number; bytes: string; createCpu: number; creates: number }>();
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const v of order) {
        const x = await writeFor(env, v, ns, b, v.status ? v.status(status) : status);
        const s = sums.get(v.label) ?? { cpu: 0, writes: 0, bytes: '', createCpu: 0, creates: 0 };
        sums.set(v.label, {
          cpu: s.cpu + x.perWrite * x.writes,
          writes: s.writes + x.writes,
          bytes: `${x.bytes} (${x.managedBytes})`,
          createCpu: s.createCpu + x.perCreate * WRITERS,
          creates: s.creates + WRITERS,
        });
        env.say(`rules: ${b} branches, ${v.label}: ${x.perWrite.toFixed(2)} ms kube-apiserver CPU per status write (${x.writes} writes, ${x.errors} errors, object ${x.bytes} B, managedFields ${x.managedBytes} B); ${x.perCreate.toFixed(2)} ms per create`);
      }
    }
    const shipped = sums.get(VARIANTS[0]!.label)!;
    for (const v of VARIANTS) {
      const s = sums.get(v.label)!;
      const per = s.cpu / s.writes;
      rows.push(`| ${b} | ${v.label} | ${per.toFixed(2)} | ${(per / (shipped.cpu / shipped.writes)).toFixed(2)}× | ${s.writes} | ${s.bytes} | ${(s.createCpu / s.creates).toFixed(2)} |`);
    }
  }
  return (
    `### CRD validation on status writes\n\nThe CRD as shipped and two copies under other API groups (spec CEL rules removed; every CEL rule removed), on one control plane. ` +
    `Per variant ${WRITERS} objects (the benchmark's spec, the status of a real committed transaction of that size), one writer each, PUT .../status with a resourceVersion precondition, ` +
    `${WRITE_MS / 1000} s, ${ROUNDS} rounds in alternating order; kube-apiserver CPU from /proc per successful write.\n\n${rows.join('\n')}`
  );
}

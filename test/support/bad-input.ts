/**
 * The bad-input catalogue (test/bad-input/): parsing its files' headers, and
 * the checks shared by the tests that submit them (bad-input.test.ts against
 * crds/, spec-guard.test.ts against the chart's CRD and spec guard).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { expect } from 'vitest';
import { freshNamespace } from './env.js';
import { refusal } from './refusal.js';
import { repoRoot } from './testenv-paths.js';

const group = 'kubetx.io';
const version = 'v1alpha1';
const plural = 'distributedtransactions';
export const catalogueDir = join(repoRoot, 'test/bad-input');

// Manifests are plain JSON on purpose: the point is what the API server accepts.
export type Obj = any;

export type Kind = 'apiserver' | 'apiserver-update' | 'operator';
export const kinds: readonly Kind[] = ['apiserver', 'apiserver-update', 'operator'];

export interface BadInput {
  file: string;
  /** The first header line. */
  title: string;
  expect: Kind;
  field: string;
  messages: RegExp[];
  reason?: string;
  conditionReason?: string;
  code: number;
  fieldValidation?: string;
  docs: Obj[];
  /** Header problems; a well-formed file has none. */
  problems: string[];
}

export function parseFile(file: string): BadInput {
  return parseText(file, readFileSync(join(catalogueDir, file), 'utf8'));
}

/** One catalogue entry from its text (a file's, or one of the inline cases below). */
export function parseText(file: string, text: string): BadInput {
  const header: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    header.push(line.replace(/^# ?/, ''));
  }
  const values = (key: string) => header.filter((l) => l.startsWith(`${key}: `)).map((l) => l.slice(key.length + 2).trim());
  const one = (key: string, problems: string[], required = true): string | undefined => {
    const v = values(key);
    if (v.length > 1 || (required && v.length === 0)) problems.push(`want exactly one "# ${key}:" line, found ${v.length}`);
    return v[0];
  };
  const problems: string[] = [];
  const kind = one('expect', problems) as Kind;
  if (!kinds.includes(kind)) problems.push(`"# expect:" must be one of ${kinds.join(', ')}`);
  const messages: RegExp[] = [];
  for (const m of values('message')) {
    try {
      messages.push(new RegExp(m));
    } catch (err) {
      problems.push(`"# message: ${m}" is not a regular expression: ${String(err)}`);
    }
  }
  if (messages.length === 0) problems.push('want at least one "# message:" line');
  const reason = one('reason', problems, kind === 'operator');
  const docs = parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) problems.push(`YAML: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Obj;
  });
  const want = kind === 'apiserver-update' ? 'at least 2' : 'exactly 1';
  if (kind === 'apiserver-update' ? docs.length < 2 : docs.length !== 1) problems.push(`want ${want} YAML documents, found ${docs.length}`);
  for (const d of docs) {
    if (d?.apiVersion !== `${group}/${version}` || d?.kind !== 'DistributedTransaction') problems.push('every document must be a kubetx.io/v1alpha1 DistributedTransaction');
    if (d?.metadata?.name !== docs[0]?.metadata?.name) problems.push('every document must name the same object');
  }
  return {
    file,
    title: (header[0] ?? '').trim(),
    expect: kind,
    field: one('field', problems) ?? '',
    messages,
    reason,
    conditionReason: one('condition-reason', problems, false),
    code: Number(one('code', problems, false) ?? 422),
    fieldValidation: one('field-validation', problems, false),
    docs,
    problems,
  };
}

export const files = readdirSync(catalogueDir).filter((f) => f.endsWith('.yaml')).sort();
export const catalogue = files.map(parseFile);
export const ofKind = (k: Kind) => catalogue.filter((c) => c.expect === k);

/** The value at a path such as `spec.branches[2].dependson`. */
export function at(obj: Obj, path: string): unknown {
  let v = obj;
  for (const part of path.split(/\.|(?=\[)/)) {
    if (v === undefined || v === null) return undefined;
    const index = /^\[(\d+)\]$/.exec(part);
    v = index ? v[Number(index[1])] : v[part];
  }
  return v;
}

/** A copy of the document, placed in `ns`. */
export function inNamespace(doc: Obj, ns: string): Obj {
  const obj = structuredClone(doc);
  obj.metadata = { ...obj.metadata, namespace: ns };
  return obj;
}

export function expectNamesField(text: string, c: BadInput) {
  expect(text, `the refusal names ${c.field}`).toContain(c.field);
  for (const re of c.messages) expect(text).toMatch(re);
}

/** Creates document 1 of `c`, applies the middle ones, and expects the last update refused; the stored spec stays. */
export async function refusedOnUpdate(kc: k8s.KubeConfig, c: BadInput): Promise<void> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const get = (namespace: string, name: string) => api.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<Obj>;
  const replace = (namespace: string, body: Obj) =>
    api.replaceNamespacedCustomObject({ group, version, namespace, plural, name: body.metadata.name, body }) as Promise<Obj>;
  const ns = await freshNamespace(kc, 'bad');
  const docs = c.docs.map((d) => inNamespace(d, ns));
  const name = docs[0].metadata.name;
  const created = (await api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body: docs[0] })) as Obj;
  expect(created.spec).toEqual(docs[0].spec);
  // Every document but the last is accepted: the valid history leading up to the refused edit.
  for (const doc of docs.slice(1, -1)) {
    const current = await get(ns, name);
    expect((await replace(ns, { ...current, spec: doc.spec })).spec).toEqual(doc.spec);
  }
  const current = await get(ns, name);
  const { code, message } = await refusal(replace(ns, { ...current, spec: docs.at(-1).spec }));
  expect(code, message).toBe(c.code);
  expectNamesField(message, c);
  // Nothing was stored.
  const after = await get(ns, name);
  expect(after.spec).toEqual(docs.at(-2).spec);
  expect(after.metadata.resourceVersion).toBe(current.metadata.resourceVersion);
}

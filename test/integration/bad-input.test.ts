/**
 * The bad-input catalogue (test/bad-input/): every file is one invalid
 * DistributedTransaction whose header says who refuses it and how.
 *
 *   # expect: apiserver | apiserver-update | operator
 *   # field: spec.branches[1].name        (must appear in the refusal)
 *   # message: <regex>                    (repeatable; each must match the refusal)
 *   # reason: InvalidEndpoint             (operator: the Warning Event's reason)
 *   # condition-reason: Failed            (operator: Succeeded=False reason, if not `reason`)
 *   # code: 400                           (apiserver: HTTP status, default 422)
 *   # field-validation: Strict            (apiserver: the request's fieldValidation, as kubectl sends)
 *
 * apiserver: the create is refused (HTTP 422) with a message naming the field,
 * and nothing is stored. apiserver-update: a multi-document file; document 1
 * is created, the middle ones are accepted as updates, the last one is refused
 * and the stored spec stays that of the previous document. operator: what CEL
 * cannot check (dependsOn cycles, payload size, the endpoint policy): the
 * object is accepted, the operator (default policy, namespace-scoped) sets
 * phase Failed with Succeeded=False naming the field, records a Warning Event,
 * and calls no participant. Every endpoint of an operator case is pointed at a
 * counting participant first (Services by --service-override, raw addresses
 * rewritten), and a valid control transaction through the same routes proves
 * that a refusal that did not happen would show up as calls.
 *
 * Objects are sent as crd-validation.test.ts sends them: create (POST) and
 * replace (PUT), each file in a fresh namespace.
 *
 * The broker-destination cases (issue 21) are written inline below in the same
 * format and go through the same checks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveParticipant, type Participant } from '../../sdk/typescript/src/index.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { refusal } from '../support/refusal.js';
import { at, catalogue, catalogueDir, expectNamesField, files, inNamespace, kinds, ofKind, refusedOnUpdate, type BadInput, type Obj } from '../support/bad-input.js';

const group = 'kubetx.io';
const version = 'v1alpha1';
const plural = 'distributedtransactions';
/** The catalogue may grow, never shrink below this. */
const MIN_FILES = 30;

let kc: k8s.KubeConfig;
let api: k8s.CustomObjectsApi;

beforeAll(() => {
  kc = kubeConfig();
  api = kc.makeApiClient(k8s.CustomObjectsApi);
});

const create = (namespace: string, body: Obj, fieldValidation?: string) =>
  api.createNamespacedCustomObject({ group, version, namespace, plural, body, ...(fieldValidation ? { fieldValidation } : {}) }) as Promise<Obj>;
const get = (namespace: string, name: string) => api.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<Obj>;

describe('the bad-input catalogue', () => {
  it(`has at least ${MIN_FILES} files, each with a well-formed header`, () => {
    expect(files.length).toBeGreaterThanOrEqual(MIN_FILES);
    for (const c of catalogue) expect(c.problems, c.file).toEqual([]);
    // Each kind of refusal is represented.
    for (const k of kinds) expect(ofKind(k).length, k).toBeGreaterThan(0);
  });

  it('README.md lists every file, and only those', () => {
    const readme = readFileSync(join(catalogueDir, 'README.md'), 'utf8');
    const listed = new Set([...readme.matchAll(/\[([a-z0-9-]+\.yaml)\]/g)].map((m) => m[1]!));
    expect([...listed].sort()).toEqual(files);
  });
});

describe('refused by the API server on create', () => {
  it.each(ofKind('apiserver'))('$file: $title', (c) => refusedOnCreate(c));
});

/** Submits document 1 of `c`: refused with its code, naming its field; nothing stored. */
async function refusedOnCreate(c: BadInput) {
  const ns = await freshNamespace(kc, 'bad');
  const obj = inNamespace(c.docs[0], ns);
  const { code, message } = await refusal(create(ns, obj, c.fieldValidation));
  expect(code, message).toBe(c.code);
  expectNamesField(message, c);
  // Nothing was stored.
  expect((await refusal(get(ns, obj.metadata.name))).code).toBe(404);

  if (c.fieldValidation === 'Strict') {
    // Why strict validation matters: without it the unknown field is dropped, not refused.
    expect(at(obj, c.field), `${c.field} is in the manifest`).toBeDefined();
    const stored = await create(ns, obj);
    expect(at(stored, c.field), `${c.field} was pruned`).toBeUndefined();
  }
}

describe('refused by the API server on update (the spec is immutable)', () => {
  it.each(ofKind('apiserver-update'))('$file: $title', (c) => refusedOnUpdate(kc, c));
});

/** A participant serving every kubetx service, counting calls per namespace; it answers OK to everything. */
interface Counter {
  participant: Participant;
  address: string;
  calls(namespace: string): string[];
}

async function startCounter(): Promise<Counter> {
  const calls: Array<{ namespace: string; what: string }> = [];
  const record = (method: string) => (ctx: { namespace: string; name: string; branch: string }) => {
    calls.push({ namespace: ctx.namespace, what: `${ctx.name}/${ctx.branch}.${method}` });
  };
  const participant = await serveParticipant({
    address: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
    tcc: { try: record('Try'), confirm: record('Confirm'), cancel: record('Cancel') },
    saga: { execute: record('Execute'), compensate: record('Compensate') },
    receiver: { deliver: record('Deliver') },
    source: {
      checkPrepared: (ctx) => {
        calls.push({ namespace: ctx.namespace, what: `${ctx.name}.CheckPrepared` });
        return 'COMMITTED';
      },
    },
  });
  return {
    participant,
    address: `127.0.0.1:${participant.port}`,
    calls: (namespace) => calls.filter((c) => c.namespace === namespace).map((c) => c.what),
  };
}

/** Every endpoint object of a manifest, with the namespace a Service in it defaults to. */
function endpointsOf(obj: Obj): Obj[] {
  const list: Obj[] = (obj.spec?.branches ?? []).map((b: Obj) => b?.endpoint).filter(Boolean);
  if (obj.spec?.message?.source?.endpoint) list.push(obj.spec.message.source.endpoint);
  return list;
}

describe('refused by the operator (what CEL cannot check), before any call', () => {
  const cases = ofKind('operator').map((c) => ({ ...c, ns: '', obj: undefined as Obj }));
  let counter: Counter;
  let operator: OperatorProcess;
  let controlNs: string;

  beforeAll(async () => {
    counter = await startCounter();
    controlNs = await freshNamespace(kc, 'bad-control');
    const overrides = new Set([`counter.${controlNs}`]);
    for (const c of cases) {
      c.ns = await freshNamespace(kc, 'bad-op');
      c.obj = inNamespace(c.docs[0], c.ns);
      // Route everything to the counter: a refusal that did not happen would show up as calls.
      for (const e of endpointsOf(c.obj)) {
        if (e.address !== undefined) e.address = counter.address;
        if (e.service?.name) overrides.add(`${e.service.name}.${e.service.namespace ?? c.ns}`);
      }
    }
    operator = await startOperator({
      kubeconfig: kubeconfigPath(),
      namespaces: [controlNs, ...cases.map((c) => c.ns)],
      allowRawAddresses: false, // the defaults: no raw addresses, no other namespaces
      args: [...overrides].flatMap((o) => ['--service-override', `${o}=${counter.address}`]),
    });
  });

  afterAll(async () => {
    await operator?.kill();
    await counter?.participant.shutdown(0);
  });

  it('control: a valid transaction through the same operator and routes reaches the counting participant', async () => {
    const control = {
      apiVersion: `${group}/${version}`,
      kind: 'DistributedTransaction',
      metadata: { name: 'control', namespace: controlNs },
      spec: { mode: 'Saga', branches: [{ name: 'step', endpoint: { service: { name: 'counter', port: 50051 } } }] },
    };
    await create(controlNs, control);
    const tx = await eventually('the control transaction to complete', async () => {
      const t = await get(controlNs, 'control');
      return t.status?.phase === 'Completed' || t.status?.phase === 'Failed' ? t : undefined;
    });
    expect(tx.status.phase, tx.status.message).toBe('Completed');
    expect(counter.calls(controlNs)).toEqual(['control/step.Execute']);
  });

  it.each(cases)('$file: $title', async (c) => {
    const name = c.obj.metadata.name;
    // Accepted as is: the API server cannot see what is wrong.
    const created = await create(c.ns, c.obj);
    expect(created.spec).toEqual(c.obj.spec);

    const tx = await eventually(`${c.file} to be refused by the operator`, async () => {
      const t = await get(c.ns, name);
      return t.status?.phase ? t : undefined;
    });
    expect(tx.status.phase, tx.status.message).toBe('Failed');
    expect(tx.status.decision).toBeUndefined();
    expect((tx.status.branches ?? []).map((b: Obj) => b.attempts ?? 0).filter((n: number) => n > 0)).toEqual([]);
    const cond = tx.status.conditions?.find((x: Obj) => x.type === 'Succeeded');
    expect(cond).toMatchObject({ status: 'False', reason: c.conditionReason ?? c.reason });
    expectNamesField(cond.message, c);
    expectNamesField(tx.status.message, c);

    const event = await eventually(`the ${c.reason} Event`, async () =>
      (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: c.ns })).items.find(
        (e) => e.regarding?.name === name && e.reason === c.reason,
      ),
    );
    expect(event.type).toBe('Warning');
    expectNamesField(event.note ?? '', c);

    expect(counter.calls(c.ns), 'participant calls').toEqual([]);
  });

  it('no participant was called for any refused transaction', () => {
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) expect(counter.calls(c.ns), c.file).toEqual([]);
  });
});

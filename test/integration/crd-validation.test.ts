/**
 * The CRD's validation, proved against the real API server: every invalid
 * manifest below is refused with HTTP 422 and a message naming the field, the
 * valid ones (including the payment example and the largest spec the schema
 * allows) are accepted, the spec is immutable except spec.message.decision
 * (set once), the status schema is real, and kubectl shows the printer
 * columns, the short name and the category. Broker destinations
 * (spec.branches[].broker, Message and Notify only) have cases of their own in
 * each part.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { refusal } from '../support/refusal.js';
import { repoRoot, testenvKubectl } from '../support/testenv-paths.js';

const group = 'kubetx.io';
const version = 'v1alpha1';
const plural = 'distributedtransactions';

// Manifests are plain JSON here on purpose: the point is what the API server
// accepts, not what the TypeScript types allow.
type Obj = any;

let api: k8s.CustomObjectsApi;
let ns: string;
let seq = 0;

beforeAll(async () => {
  const kc = kubeConfig();
  api = kc.makeApiClient(k8s.CustomObjectsApi);
  ns = await freshNamespace(kc, 'crd');
});

const svc = (name: string, port = 50051) => ({ service: { name, port } });

function tx(spec: Obj, name = `tx-${++seq}`): Obj {
  return { apiVersion: `${group}/${version}`, kind: 'DistributedTransaction', metadata: { name, namespace: ns }, spec };
}

const tcc = (): Obj => ({
  mode: 'TCC',
  timeout: '30s',
  payload: { orderId: 1001 },
  retry: { initialInterval: '1s', maxInterval: '30s', multiplier: 2, maxAttempts: 0 },
  branches: [
    { name: 'order', endpoint: svc('order', 50051), operation: 'pay', payload: { orderId: 1001 }, callTimeout: '5s' },
    { name: 'inventory', endpoint: svc('inventory', 50052), operation: 'reduceStock', payload: { orderId: 1001, sku: 'A-1', qty: 2 }, callTimeout: '5s' },
    { name: 'credit', endpoint: svc('credit', 50053), operation: 'addCredit', payload: { orderId: 1001, userId: 7, credit: 10 }, callTimeout: '5s' },
    { name: 'warehouse', endpoint: svc('warehouse', 50054), operation: 'saleDelivery', payload: { orderId: 1001, sku: 'A-1', qty: 2 }, callTimeout: '5s' },
  ],
});

const saga = (): Obj => ({
  mode: 'Saga',
  timeout: '1m',
  branches: [
    { name: 'order', endpoint: svc('order') },
    { name: 'payment', endpoint: svc('payment'), dependsOn: ['order'] },
    { name: 'stock', endpoint: svc('stock'), dependsOn: ['order'] },
    { name: 'shipping', endpoint: svc('shipping'), dependsOn: ['payment', 'stock'], retry: { maxAttempts: 10 } },
  ],
});

const message = (): Obj => ({
  mode: 'Message',
  payload: { orderId: 7 },
  message: { source: { endpoint: svc('order'), operation: 'createOrder' }, checkAfter: '10s', decision: '' },
  branches: [
    { name: 'points', endpoint: svc('points') },
    { name: 'mail', endpoint: svc('mail') },
  ],
});

const notify = (): Obj => ({
  mode: 'Notify',
  payload: { event: 'order-paid', orderId: 7 },
  notify: { schedule: ['1s', '5s', '15s', '30s', '1m', '5m', '15m', '30m', '1h'], maxAttempts: 50 },
  branches: [{ name: 'webhook', endpoint: { address: 'hooks.example.com:443', tls: { secretName: 'hooks-ca', serverName: 'hooks.example.com' } } }],
});

/** A Message transaction whose first branch publishes to the broker and whose second is a gRPC receiver. */
const brokerMessage = (): Obj => ({
  mode: 'Message',
  payload: { orderId: 7 },
  message: { source: { endpoint: svc('order'), operation: 'createOrder' }, decision: '' },
  branches: [
    { name: 'points', broker: { subject: 'orders.paid', key: 'order-7', stream: 'ORDERS' } },
    { name: 'mail', endpoint: svc('mail') },
  ],
});

/** A Notify transaction with one broker branch, subject only (key and stream left to their defaults). */
const brokerNotify = (): Obj => ({
  mode: 'Notify',
  payload: { event: 'order-paid', orderId: 7 },
  branches: [{ name: 'audit', broker: { subject: 'audit' } }],
});

/** `base` with branch `i` replaced by a broker branch of the same name (no endpoint). */
const withBroker = (base: Obj, broker: Obj, i = 0): Obj => {
  base.branches[i] = { name: base.branches[i].name, broker };
  return base;
};

const create = (body: Obj) => api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body }) as Promise<Obj>;
const get = (name: string) => api.getNamespacedCustomObject({ group, version, namespace: ns, plural, name }) as Promise<Obj>;
const replace = (body: Obj) =>
  api.replaceNamespacedCustomObject({ group, version, namespace: ns, plural, name: body.metadata.name, body }) as Promise<Obj>;
const replaceStatus = (body: Obj) =>
  api.replaceNamespacedCustomObjectStatus({ group, version, namespace: ns, plural, name: body.metadata.name, body }) as Promise<Obj>;

/** Awaits a request that must be refused with 422; returns the API server's message. */
async function refused(request: Promise<unknown>): Promise<string> {
  const { code, message } = await refusal(request, '');
  expect(code, message).toBe(422);
  return message;
}

/** Creates a valid object, applies `edit` to a fresh copy of it and PUTs it back. */
async function editAfterCreate(spec: Obj, edit: (spec: Obj) => void): Promise<Promise<Obj>> {
  const created = await create(tx(spec));
  const copy = structuredClone(created);
  edit(copy.spec);
  return replace(copy);
}

const manyBranches = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `b${i}`, endpoint: svc('svc') }));

interface Case {
  what: string;
  spec: () => Obj;
  /** Each must appear in the API server's message: the field path first, then what is wrong. */
  expect: (string | RegExp)[];
}

const withBranch0 = (patch: Obj, base = tcc()): Obj => {
  base.branches[0] = { ...base.branches[0], ...patch };
  return base;
};

const invalidOnCreate: Case[] = [
  { what: 'unknown mode', spec: () => ({ ...tcc(), mode: 'XA' }), expect: ['spec.mode', 'Unsupported value: "XA"'] },
  { what: 'no mode', spec: () => { const s = tcc(); delete s.mode; return s; }, expect: ['spec.mode', 'Required value'] },
  { what: 'no branches (empty list)', spec: () => ({ ...tcc(), branches: [] }), expect: ['spec.branches', 'at least 1 items'] },
  { what: 'no branches (missing)', spec: () => { const s = tcc(); delete s.branches; return s; }, expect: ['spec.branches', 'Required value'] },
  { what: '65 branches', spec: () => ({ ...tcc(), branches: manyBranches(65) }), expect: ['spec.branches', 'Too many: 65', 'at most 64'] },
  {
    what: 'duplicate branch names',
    spec: () => { const s = tcc(); s.branches[2].name = 'order'; return s; },
    expect: ['spec.branches', 'branch names must be unique: "order" is used more than once'],
  },
  { what: 'branch name not a DNS label', spec: () => withBranch0({ name: 'Order_1' }), expect: ['spec.branches[0].name', 'should match'] },
  { what: 'branch name longer than 63', spec: () => withBranch0({ name: 'a'.repeat(64) }), expect: ['spec.branches[0].name', 'Too long'] },
  {
    what: 'endpoint with both service and address',
    spec: () => withBranch0({ endpoint: { ...svc('order'), address: '10.0.0.7:50051' } }),
    expect: ['spec.branches[0].endpoint', 'exactly one of endpoint.service or endpoint.address must be set'],
  },
  {
    what: 'endpoint with neither service nor address',
    spec: () => withBranch0({ endpoint: { tls: { secretName: 'ca' } } }),
    expect: ['spec.branches[0].endpoint', 'exactly one of endpoint.service or endpoint.address must be set'],
  },
  { what: 'service port 0', spec: () => withBranch0({ endpoint: svc('order', 0) }), expect: ['spec.branches[0].endpoint.service.port', 'greater than or equal to 1'] },
  { what: 'service port 70000', spec: () => withBranch0({ endpoint: svc('order', 70000) }), expect: ['spec.branches[0].endpoint.service.port', 'less than or equal to 65535'] },
  { what: 'service name not a DNS label', spec: () => withBranch0({ endpoint: svc('1order') }), expect: ['spec.branches[0].endpoint.service.name', 'should match'] },
  { what: 'address without a port', spec: () => withBranch0({ endpoint: { address: 'order.shop.svc' } }), expect: ['spec.branches[0].endpoint.address', 'should match'] },
  { what: 'address with port 99999', spec: () => withBranch0({ endpoint: { address: 'order:99999' } }), expect: ['spec.branches[0].endpoint.address', 'the port must be between 1 and 65535'] },
  { what: 'tls without secretName', spec: () => withBranch0({ endpoint: { ...svc('order'), tls: { serverName: 'x' } } }), expect: ['spec.branches[0].endpoint.tls.secretName', 'Required value'] },
  { what: 'operation longer than 253', spec: () => withBranch0({ operation: 'x'.repeat(254) }), expect: ['spec.branches[0].operation', 'Too long'] },
  { what: 'timeout "5 seconds"', spec: () => ({ ...tcc(), timeout: '5 seconds' }), expect: ['spec.timeout', 'should match'] },
  { what: 'timeout "30" (no unit)', spec: () => ({ ...tcc(), timeout: '30' }), expect: ['spec.timeout', 'should match'] },
  { what: 'callTimeout "-1s"', spec: () => withBranch0({ callTimeout: '-1s' }), expect: ['spec.branches[0].callTimeout', 'should match'] },
  { what: 'ttlAfterFinished "0s"', spec: () => ({ ...tcc(), ttlAfterFinished: '0s' }), expect: ['spec.ttlAfterFinished', 'must be a duration greater than 0s'] },
  { what: 'timeout "0h0m0s"', spec: () => ({ ...tcc(), timeout: '0h0m0s' }), expect: ['spec.timeout', 'must be a duration greater than 0s'] },
  { what: 'retry.multiplier 0.5', spec: () => ({ ...tcc(), retry: { multiplier: 0.5 } }), expect: ['spec.retry.multiplier', 'greater than or equal to 1'] },
  { what: 'retry.maxAttempts -1', spec: () => ({ ...tcc(), retry: { maxAttempts: -1 } }), expect: ['spec.retry.maxAttempts', 'greater than or equal to 0'] },
  { what: 'retry.initialInterval "0s"', spec: () => ({ ...tcc(), retry: { initialInterval: '0s' } }), expect: ['spec.retry.initialInterval', 'must be a duration greater than 0s'] },
  {
    what: 'retry.initialInterval > maxInterval',
    spec: () => ({ ...tcc(), retry: { initialInterval: '10m', maxInterval: '1m' } }),
    expect: ['spec.retry.initialInterval', 'initialInterval must not be greater than maxInterval'],
  },
  { what: 'branch retry.maxAttempts -1', spec: () => withBranch0({ retry: { maxAttempts: -1 } }), expect: ['spec.branches[0].retry.maxAttempts', 'greater than or equal to 0'] },
  { what: 'branch retry.maxInterval "1 minute"', spec: () => withBranch0({ retry: { maxInterval: '1 minute' } }), expect: ['spec.branches[0].retry.maxInterval', 'should match'] },
  { what: 'payload not an object', spec: () => ({ ...tcc(), payload: 'orderId=1001' }), expect: ['spec.payload', 'must be of type object'] },
  {
    what: 'dependsOn in TCC mode',
    spec: () => { const s = tcc(); s.branches[1].dependsOn = ['order']; return s; },
    expect: ['spec.branches', 'branch "inventory": dependsOn is only allowed when spec.mode is Saga (spec.mode is TCC)'],
  },
  {
    what: 'dependsOn naming an unknown branch',
    spec: () => { const s = saga(); s.branches[3].dependsOn = ['payment', 'shiping']; return s; },
    expect: ['spec.branches', 'branch "shipping": dependsOn names "shiping", which is not a branch of this transaction'],
  },
  {
    what: 'dependsOn naming the branch itself',
    spec: () => { const s = saga(); s.branches[1].dependsOn = ['order', 'payment']; return s; },
    expect: ['spec.branches[1].dependsOn', 'branch "payment" must not depend on itself'],
  },
  {
    what: 'dependsOn with a duplicate entry',
    spec: () => { const s = saga(); s.branches[3].dependsOn = ['payment', 'payment']; return s; },
    expect: ['spec.branches[3].dependsOn[1]', 'Duplicate value'],
  },
  {
    what: 'Message mode without spec.message',
    spec: () => { const s = message(); delete s.message; return s; },
    expect: ['spec.message', 'spec.message is required when spec.mode is Message'],
  },
  {
    what: 'spec.message in TCC mode',
    spec: () => ({ ...tcc(), message: message().message }),
    expect: ['spec.message', 'spec.message is only allowed when spec.mode is Message (spec.mode is TCC)'],
  },
  {
    what: 'spec.notify in Saga mode',
    spec: () => ({ ...saga(), notify: notify().notify }),
    expect: ['spec.notify', 'spec.notify is only allowed when spec.mode is Notify (spec.mode is Saga)'],
  },
  {
    what: 'decision "Maybe"',
    spec: () => { const s = message(); s.message.decision = 'Maybe'; return s; },
    expect: ['spec.message.decision', 'Unsupported value: "Maybe"'],
  },
  {
    what: 'message.source without an endpoint target',
    spec: () => { const s = message(); s.message.source.endpoint = {}; return s; },
    expect: ['spec.message.source.endpoint', 'exactly one of endpoint.service or endpoint.address must be set'],
  },
  {
    what: 'message.checkAfter "10"',
    spec: () => { const s = message(); s.message.checkAfter = '10'; return s; },
    expect: ['spec.message.checkAfter', 'should match'],
  },
  {
    what: 'notify.schedule with a "0s" interval',
    spec: () => { const s = notify(); s.notify.schedule = ['1s', '0s']; return s; },
    expect: ['spec.notify.schedule[1]', 'must be a duration greater than 0s'],
  },
  {
    what: 'notify.maxAttempts -1',
    spec: () => { const s = notify(); s.notify.maxAttempts = -1; return s; },
    expect: ['spec.notify.maxAttempts', 'greater than or equal to 0'],
  },
];

describe('DistributedTransaction CRD: invalid manifests are refused with a message naming the field', () => {
  it.each(invalidOnCreate)('$what', async ({ spec, expect: fragments }) => {
    const msg = await refused(create(tx(spec())));
    for (const f of fragments) {
      if (typeof f === 'string') expect(msg).toContain(f);
      else expect(msg).toMatch(f);
    }
  });
});

/** A broker branch's subject, key or stream set to `value` (branch 0 of brokerMessage). */
const brokerField = (field: 'subject' | 'key' | 'stream', value: unknown) => () => {
  const s = brokerMessage();
  s.branches[0].broker[field] = value;
  return s;
};

const invalidBrokerOnCreate: Case[] = [
  // Where a branch delivers, and in which mode (spec-level CEL, create only).
  {
    what: 'a broker branch in TCC mode',
    spec: () => withBroker(tcc(), { subject: 'orders.paid' }),
    expect: ['spec.branches: Forbidden', 'branch "order": broker branches are for Message and Notify (spec.mode is TCC); a TCC branch needs an endpoint'],
  },
  {
    what: 'a broker branch in Saga mode',
    spec: () => withBroker(saga(), { subject: 'orders.paid' }, 2),
    expect: ['spec.branches: Forbidden', 'branch "stock": broker branches are for Message and Notify (spec.mode is Saga); a Saga branch needs an endpoint'],
  },
  {
    what: 'a TCC branch with both endpoint and broker (both rules answer)',
    spec: () => withBranch0({ broker: { subject: 'orders.paid' } }),
    expect: ['branch "order": set exactly one of endpoint or broker, not both', 'branch "order": broker branches are for Message and Notify (spec.mode is TCC)'],
  },
  {
    what: 'a Message branch with both endpoint and broker',
    spec: () => { const s = brokerMessage(); s.branches[1].broker = { subject: 'mail' }; return s; },
    expect: ['spec.branches: Invalid value', 'branch "mail": set exactly one of endpoint or broker, not both'],
  },
  {
    what: 'a Message branch with neither endpoint nor broker',
    spec: () => { const s = brokerMessage(); delete s.branches[1].endpoint; return s; },
    expect: ['spec.branches: Required value', 'branch "mail": set exactly one of endpoint or broker (spec.branches[1].endpoint and .broker are both unset)'],
  },
  {
    what: 'a TCC branch with neither endpoint nor broker',
    spec: () => { const s = tcc(); delete s.branches[3].endpoint; return s; },
    expect: ['spec.branches: Required value', 'branch "warehouse": set exactly one of endpoint or broker (spec.branches[3].endpoint and .broker are both unset)'],
  },
  {
    what: 'a Notify branch with an empty broker (no subject)',
    spec: () => withBroker(brokerNotify(), {}),
    expect: ['spec.branches[0].broker.subject', 'Required value'],
  },
  { what: 'broker not an object', spec: () => withBroker(brokerNotify(), 'orders.paid'), expect: ['spec.branches[0].broker', 'must be of type object'] },
  // broker.subject: dot-separated tokens of [A-Za-z0-9_-], no wildcards (OpenAPI pattern).
  ...['orders.*', 'orders.>', '>', '*', 'orders..paid', '.orders', 'orders.', 'orders paid', 'orders/paid', 'ordérs', ''].map(
    (subject): Case => ({ what: `broker.subject ${JSON.stringify(subject)}`, spec: brokerField('subject', subject), expect: ['spec.branches[0].broker.subject', 'should match'] }),
  ),
  { what: 'broker.subject longer than 200', spec: brokerField('subject', 'a'.repeat(201)), expect: ['spec.branches[0].broker.subject', 'Too long'] },
  // broker.key: 1-256 characters, none a control character (OpenAPI pattern, RE2 \x escapes).
  { what: 'broker.key ""', spec: brokerField('key', ''), expect: ['spec.branches[0].broker.key', 'should be at least 1 chars long'] },
  ...['order\t7', 'order-7\n', '\r', 'a\u0000b', 'a\u001bb', 'a\u007fb', '\u001f'].map(
    (key): Case => ({ what: `broker.key ${JSON.stringify(key)} (a control character)`, spec: brokerField('key', key), expect: ['spec.branches[0].broker.key', 'should match'] }),
  ),
  { what: 'broker.key longer than 256', spec: brokerField('key', 'k'.repeat(257)), expect: ['spec.branches[0].broker.key', 'Too long'] },
  { what: 'broker.key not a string', spec: brokerField('key', 7), expect: ['spec.branches[0].broker.key', 'must be of type string'] },
  // broker.stream: a JetStream stream name.
  ...['ORDERS.v1', 'ORD*', 'ORD>', 'my stream', ''].map(
    (stream): Case => ({ what: `broker.stream ${JSON.stringify(stream)}`, spec: brokerField('stream', stream), expect: ['spec.branches[0].broker.stream', 'should match'] }),
  ),
  { what: 'broker.stream longer than 64', spec: brokerField('stream', 'S'.repeat(65)), expect: ['spec.branches[0].broker.stream', 'Too long'] },
];

describe('DistributedTransaction CRD: invalid broker destinations are refused with a message naming the field or branch', () => {
  it.each(invalidBrokerOnCreate)('$what', async ({ spec, expect: fragments }) => {
    const msg = await refused(create(tx(spec())));
    for (const f of fragments) {
      if (typeof f === 'string') expect(msg).toContain(f);
      else expect(msg).toMatch(f);
    }
  });

  it('control: valid subject, key and stream values in the same manifest are accepted', async () => {
    // Without this, a refusal caused by something else in brokerMessage() would pass the cases above.
    for (const [field, value] of [
      ['subject', 'orders.paid-v1_x.A9'],
      ['key', 'order 7 / ключ \u00e9'],
      ['stream', 'ORDERS_v1-x'],
    ] as const) {
      const spec = brokerField(field, value)();
      const created = await create(tx(spec));
      expect(created.spec.branches[0].broker[field]).toBe(value);
    }
  });
});

interface EditCase {
  what: string;
  spec: () => Obj;
  edit: (spec: Obj) => void;
  expect: string[];
}

const invalidEdits: EditCase[] = [
  { what: 'change the payload', spec: tcc, edit: (s) => (s.payload.orderId = 1002), expect: ['spec.payload', 'spec.payload is immutable after creation'] },
  { what: 'add a payload', spec: saga, edit: (s) => (s.payload = { x: 1 }), expect: ['spec.payload', 'spec.payload is immutable after creation'] },
  { what: 'add a payloadFrom', spec: saga, edit: (s) => (s.payloadFrom = { secretKeyRef: { name: 'card', key: 'k' } }), expect: ['spec.payloadFrom', 'spec.payloadFrom is immutable after creation'] },
  { what: 'change a nested payload value', spec: tcc, edit: (s) => (s.payload = { orderId: 1001, extra: { a: [1] } }), expect: ['spec.payload', 'is immutable'] },
  { what: 'change a branch endpoint', spec: tcc, edit: (s) => (s.branches[1].endpoint.service.port = 60000), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: "change a branch's payload", spec: tcc, edit: (s) => (s.branches[1].payload.qty = 3), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: 'reorder branches', spec: tcc, edit: (s) => s.branches.reverse(), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: 'add a branch', spec: tcc, edit: (s) => s.branches.push({ name: 'late', endpoint: svc('late') }), expect: ['spec.branches', 'is immutable'] },
  { what: 'change the mode', spec: tcc, edit: (s) => (s.mode = 'Saga'), expect: ['spec.mode', 'spec.mode is immutable after creation'] },
  // The create-only rules (uniqueness, dependsOn, what goes with which mode) are skipped on updates: the
  // immutability rules must then refuse what they would have refused.
  { what: 'duplicate a branch name', spec: tcc, edit: (s) => (s.branches[1].name = s.branches[0].name), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: 'add dependsOn to a TCC branch', spec: tcc, edit: (s) => (s.branches[1].dependsOn = [s.branches[0].name]), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: 'add a notify block to a TCC transaction', spec: tcc, edit: (s) => (s.notify = { maxAttempts: 3 }), expect: ['spec.notify', 'spec.notify is immutable after creation'] },
  { what: 'change the timeout', spec: tcc, edit: (s) => (s.timeout = '1h'), expect: ['spec.timeout', 'spec.timeout is immutable after creation'] },
  { what: 'remove the timeout', spec: tcc, edit: (s) => delete s.timeout, expect: ['spec.timeout', 'spec.timeout is immutable after creation'] },
  { what: 'change retry', spec: tcc, edit: (s) => (s.retry.maxAttempts = 3), expect: ['spec.retry', 'spec.retry is immutable after creation'] },
  // The value rules of spec.timeout, spec.retry, spec.ttlAfterFinished and spec.message are create-only too.
  { what: 'change the timeout to 0s', spec: tcc, edit: (s) => (s.timeout = '0s'), expect: ['spec.timeout', 'spec.timeout is immutable after creation'] },
  { what: 'change retry to initialInterval > maxInterval', spec: tcc, edit: (s) => (s.retry = { initialInterval: '10s', maxInterval: '1s' }), expect: ['spec.retry', 'spec.retry is immutable after creation'] },
  { what: 'change message.checkAfter to 0s', spec: message, edit: (s) => (s.message.checkAfter = '0s'), expect: ['spec.message.checkAfter', 'spec.message.checkAfter is immutable after creation'] },
  { what: 'add ttlAfterFinished', spec: tcc, edit: (s) => (s.ttlAfterFinished = '1h'), expect: ['spec.ttlAfterFinished', 'spec.ttlAfterFinished is immutable after creation'] },
  { what: 'change message.source', spec: message, edit: (s) => (s.message.source.operation = 'other'), expect: ['spec.message.source', 'spec.message.source is immutable after creation'] },
  { what: 'change message.checkAfter', spec: message, edit: (s) => (s.message.checkAfter = '1m'), expect: ['spec.message.checkAfter', 'spec.message.checkAfter is immutable after creation'] },
  { what: 'remove spec.message', spec: message, edit: (s) => delete s.message, expect: ['spec.message', 'spec.message is immutable after creation'] },
  { what: 'change notify.schedule', spec: notify, edit: (s) => s.notify.schedule.pop(), expect: ['spec.notify', 'spec.notify is immutable after creation'] },
  // Broker branches are branches: any change is refused, and the create-only broker rules (exactly one of
  // endpoint or broker, broker only in Message/Notify) are skipped on updates only because of this.
  { what: "change a broker branch's subject", spec: brokerMessage, edit: (s) => (s.branches[0].broker.subject = 'orders.refunded'), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: "remove a broker branch's key", spec: brokerMessage, edit: (s) => delete s.branches[0].broker.key, expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: 'turn a gRPC receiver into a broker branch', spec: brokerMessage, edit: (s) => withBroker(s, { subject: 'mail' }, 1), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
  { what: 'add a broker to a TCC branch (the mode rule is create-only)', spec: tcc, edit: (s) => withBroker(s, { subject: 'orders.paid' }), expect: ['spec.branches', 'spec.branches is immutable after creation'] },
];

describe('DistributedTransaction CRD: the spec is immutable after creation', () => {
  it.each(invalidEdits)('refuses: $what', async ({ spec, edit, expect: fragments }) => {
    const msg = await refused(editAfterCreate(spec(), edit));
    for (const f of fragments) expect(msg).toContain(f);
  });

  it('spec.message.decision may be set once: "" → Commit accepted, then Commit → Rollback, → "" and removal refused', async () => {
    const created = await create(tx(message()));
    const decided = structuredClone(created);
    decided.spec.message.decision = 'Commit';
    const after = await replace(decided);
    expect(after.spec.message.decision).toBe('Commit');
    expect(after.metadata.generation).toBe(2);

    const setOnce = 'spec.message.decision may be set once, from "" to Commit or Rollback';
    for (const next of ['Rollback', '']) {
      const again = structuredClone(after);
      again.spec.message.decision = next;
      const msg = await refused(replace(again));
      expect(msg).toContain('spec.message.decision');
      expect(msg).toContain(setOnce);
    }
    const removed = structuredClone(after);
    delete removed.spec.message.decision;
    expect(await refused(replace(removed))).toContain(setOnce);

    // Setting the decision is the only change allowed: with another field, that field is named.
    const sneaky = structuredClone(created);
    sneaky.spec.message.decision = 'Rollback';
    sneaky.spec.payload = { orderId: 8 };
    sneaky.metadata.resourceVersion = after.metadata.resourceVersion;
    const msg = await refused(replace(sneaky));
    expect(msg).toContain('spec.payload is immutable after creation');
    expect(msg).toContain(setOnce);

    // Metadata-only edits still go through (the manual-intervention annotations).
    const annotated = structuredClone(after);
    annotated.metadata.annotations = { 'kubetx.io/retry': '1' };
    expect((await replace(annotated)).metadata.annotations['kubetx.io/retry']).toBe('1');
    expect((await get(after.metadata.name)).spec.message.decision).toBe('Commit');
  });

  it('an unset decision may be set to Rollback, and an unchanged spec can be written back', async () => {
    const spec = message();
    delete spec.message.decision;
    const created = await create(tx(spec));
    expect(await replace(structuredClone(created))).toBeDefined();
    const fresh = await get(created.metadata.name);
    fresh.spec.message.decision = 'Rollback';
    expect((await replace(fresh)).spec.message.decision).toBe('Rollback');
  });
});

function exampleManifests(): { file: string; obj: Obj }[] {
  const out: { file: string; obj: Obj }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry)) {
        for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
          const obj = doc.toJS() as Obj;
          if (obj?.kind === 'DistributedTransaction') out.push({ file: path.slice(repoRoot.length + 1), obj });
        }
      }
    }
  };
  walk(join(repoRoot, 'examples'));
  return out.filter((m) => !m.file.startsWith('examples/bad-input/'));
}

describe('DistributedTransaction CRD: valid manifests are accepted', () => {
  const valid: { what: string; spec: () => Obj }[] = [
    { what: 'TCC, four branches (the payment example)', spec: tcc },
    { what: 'Saga with a dependsOn DAG', spec: saga },
    { what: 'Message with an empty decision', spec: message },
    { what: 'Notify with a schedule, raw address and TLS', spec: notify },
    { what: 'minimal TCC (defaults left to the operator)', spec: () => ({ mode: 'TCC', branches: [{ name: 'a', endpoint: svc('a') }] }) },
    {
      what: 'Go durations in every form the pattern allows',
      spec: () => ({
        ...tcc(),
        timeout: '1m30s',
        ttlAfterFinished: '1.5h',
        retry: { initialInterval: '250ms', maxInterval: '2m', multiplier: 1.5, maxAttempts: 5 },
        branches: [
          { name: 'a', endpoint: svc('a'), callTimeout: '10000µs' },
          { name: 'b', endpoint: { address: '[::1]:50051' }, callTimeout: '.5s' },
          { name: 'c', endpoint: { address: '10.0.0.7:1' }, callTimeout: '1h2m3s4ms5us6ns' },
        ],
      }),
    },
    {
      what: 'the largest spec the schema allows (64 branches, each depending on the 63 others) stays within the CEL runtime cost limit',
      spec: () => {
        const names = Array.from({ length: 64 }, (_, i) => `b${String(i).padStart(2, '0')}-${'x'.repeat(59)}`);
        return {
          mode: 'Saga',
          branches: names.map((name) => ({
            name,
            endpoint: { service: { name: 's'.repeat(63), port: 65535, namespace: 'n'.repeat(63) } },
            operation: 'o'.repeat(253),
            dependsOn: names.filter((n) => n !== name),
            retry: { initialInterval: '1s', maxInterval: '5m', multiplier: 2, maxAttempts: 3 },
            payload: { blob: 'p'.repeat(4096) },
          })),
        };
      },
    },
  ];

  const brokerValid: { what: string; spec: () => Obj }[] = [
    { what: 'Message with a broker branch (subject, key, stream) next to a gRPC receiver', spec: brokerMessage },
    { what: 'Notify with a broker branch (subject only; key and stream defaulted by the operator)', spec: brokerNotify },
    {
      what: 'broker values at their bounds: 200-character subject, 256-character key (multi-byte, spaces), 64-character stream',
      spec: () => withBroker(brokerNotify(), { subject: `${'a'.repeat(100)}.${'B_-'.repeat(33)}`, key: `${'é'.repeat(255)} `, stream: 'S'.repeat(64) }),
    },
    {
      what: 'the largest broker spec the schema allows (64 Message branches, every broker string at its maximum) stays within the CEL runtime cost limit',
      spec: () => ({
        ...brokerMessage(),
        branches: Array.from({ length: 64 }, (_, i) => ({
          name: `b${String(i).padStart(2, '0')}-${'x'.repeat(59)}`,
          broker: { subject: `t${String(i).padStart(2, '0')}.${'s'.repeat(196)}`, key: 'k'.repeat(256), stream: 'S'.repeat(64) },
          operation: 'o'.repeat(253),
          retry: { initialInterval: '1s', maxInterval: '5m', multiplier: 2, maxAttempts: 3 },
          payload: { blob: 'p'.repeat(4096) },
        })),
      }),
    },
  ];
  valid.push(...brokerValid);

  it.each(valid)('$what', async ({ spec }) => {
    const created = await create(tx(spec()));
    expect(created.metadata.uid).toBeTruthy();
    // Nothing was pruned: what we sent is what is stored.
    expect(created.spec).toEqual(spec());
  });

  it('every DistributedTransaction under examples/ is accepted', async () => {
    const manifests = exampleManifests();
    expect(manifests.length).toBeGreaterThan(0);
    for (const { file, obj } of manifests) {
      obj.metadata = { ...obj.metadata, name: `ex-${++seq}`, namespace: ns };
      await expect(create(obj), file).resolves.toMatchObject({ spec: obj.spec });
    }
  });
});

describe('DistributedTransaction CRD: examples/bad-input', () => {
  const dir = join(repoRoot, 'examples/bad-input');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

  it('has examples', () => expect(files.length).toBeGreaterThan(0));

  it.each(files)('%s is refused with the message its comment shows', async (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const fragments = [...text.matchAll(/^# expect: (.+)$/gm)].map((m) => m[1]!);
    expect(fragments.length, 'a "# expect:" line').toBeGreaterThan(0);
    const obj = parseAllDocuments(text)[0]!.toJS() as Obj;
    obj.metadata = { ...obj.metadata, namespace: ns };
    const msg = await refused(create(obj));
    for (const f of fragments) expect(msg).toContain(f);
  });
});

describe('DistributedTransaction CRD: every spec field has an immutability rule', () => {
  // A new spec field without a transition rule would silently be mutable.
  // This reads the CRD itself, so adding a field without a rule fails here.
  const crd = parseAllDocuments(readFileSync(join(repoRoot, 'crds/kubetx.io_distributedtransactions.yaml'), 'utf8'))[0]!.toJS() as Obj;
  const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
  const rules = (node: Obj): string[] => (node['x-kubernetes-validations'] ?? []).map((r: Obj) => r.rule as string);

  it.each(Object.keys(spec.properties))('spec.%s', (field) => {
    expect(rules(spec).some((r) => r.includes(`oldSelf.${field}`))).toBe(true);
  });

  it.each(Object.keys(spec.properties.message.properties))('spec.message.%s', (field) => {
    expect(rules(spec.properties.message).some((r) => r.includes(`oldSelf.${field}`))).toBe(true);
  });

  it('every spec field is exercised by an edit the API server refuses', () => {
    const covered = new Set(invalidEdits.map((c) => c.expect[0]));
    for (const field of Object.keys(spec.properties)) {
      if (field === 'message') continue; // its children are listed below
      expect(covered, `an invalidEdits case for spec.${field}`).toContain(`spec.${field}`);
    }
    for (const field of ['source', 'checkAfter']) expect(covered).toContain(`spec.message.${field}`);
  });
});

describe('DistributedTransaction CRD: status schema', () => {
  it('accepts the status the operator writes and prunes unknown fields', async () => {
    const created = await create(tx(tcc()));
    const now = new Date().toISOString(); // milliseconds, as the operator writes them
    const status = {
      phase: 'Confirming',
      decision: 'Confirm',
      observedGeneration: 1,
      startTime: now,
      decisionTime: now,
      message: 'Confirming: 3/4 branches confirmed',
      progress: '3/4',
      abortAcknowledged: 'operator said so',
      retryAcknowledged: '2',
      check: { attempts: 2, lastAnswer: 'UNKNOWN', lastError: 'DEADLINE_EXCEEDED', lastAttemptTime: now, nextAttemptTime: now },
      conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Confirming', message: 'Confirming', lastTransitionTime: now, observedGeneration: 1 }],
      branches: [
        { name: 'order', state: 'Confirmed', attempts: 1, lastAttemptTime: now },
        { name: 'inventory', state: 'Prepared', attempts: 3, lastError: 'UNAVAILABLE: connect ECONNREFUSED', lastAttemptTime: now, nextAttemptTime: now, result: Buffer.from('res-1').toString('base64') },
      ],
    };
    const written = await replaceStatus({ ...created, status: { ...status, somethingNew: 'x' } });
    expect(written.status).toEqual(status);
  });

  it.each([
    { what: 'unknown phase', status: { phase: 'Bogus' }, field: 'status.phase' },
    { what: 'condition without reason', status: { conditions: [{ type: 'Succeeded', status: 'True', message: '', lastTransitionTime: '2025-01-01T00:00:00Z' }] }, field: 'status.conditions[0].reason' },
    { what: 'negative attempts', status: { branches: [{ name: 'a', attempts: -1 }] }, field: 'status.branches[0].attempts' },
    { what: 'time that is not RFC 3339', status: { startTime: 'yesterday' }, field: 'status.startTime' },
    { what: 'unknown check answer', status: { check: { attempts: 1, lastAnswer: 'MAYBE' } }, field: 'status.check.lastAnswer' },
  ])('refuses a status with $what', async ({ status, field }) => {
    const created = await create(tx(tcc()));
    expect(await refused(replaceStatus({ ...created, status }))).toContain(field);
  });

  it('status.branches is an atomic list: the schema does not check its names (the operator writes one entry per spec branch)', async () => {
    // A list map keyed by name refused duplicates, but made server-side apply track every leaf of every
    // branch in managedFields on each status write (bench/RESULTS.md, rules). Only the operator writes
    // status (the chart's status guard), and the engine reads the first entry of a name (engine tests).
    const created = await create(tx(tcc()));
    const written = await replaceStatus({ ...created, status: { branches: [{ name: 'order', state: 'Trying', attempts: 1 }, { name: 'order', state: 'Trying', attempts: 1 }] } });
    expect(written.status.branches).toHaveLength(2);
  });
});

describe('DistributedTransaction CRD: status.branches[].delivery (broker branches)', () => {
  const nats = { route: 'nats', stream: 'ORDERS', sequence: '42' };
  const redis = { route: 'redis', stream: 'kubetx:kubetx.crd.orders.paid:17', sequence: '1718000000000-0', duplicate: true };

  it('accepts the acknowledgements the operator writes (both routes), prunes unknown fields, and a Delivered outcome', async () => {
    const created = await create(tx(brokerMessage()));
    const now = new Date().toISOString();
    const delivering = {
      phase: 'Delivering',
      decision: 'Deliver',
      branches: [
        { name: 'points', state: 'Delivered', attempts: 1, lastAttemptTime: now, delivery: nats },
        { name: 'mail', state: 'Delivering', attempts: 2, lastAttemptTime: now, lastError: 'BrokerUnavailable: timeout' },
      ],
    };
    const sent = structuredClone(delivering) as Obj;
    sent.branches[0].delivery.partition = 3; // not in the schema: pruned
    const written = await replaceStatus({ ...created, status: sent });
    expect(written.status).toEqual(delivering);

    // The create-only spec rules are skipped on this update; the terminal-phase rule still holds.
    const delivered = {
      ...delivering,
      phase: 'Delivered',
      branches: [delivering.branches[0], { name: 'mail', state: 'Delivered', attempts: 3, lastAttemptTime: now, delivery: redis }],
    };
    expect((await replaceStatus({ ...written, status: delivered })).status).toEqual(delivered);
    // The unchanged spec can be written back.
    expect((await replace(await get(created.metadata.name))).spec).toEqual(brokerMessage());
  });

  it.each([
    { what: 'an unknown route', delivery: { ...nats, route: 'kafka' }, expect: ['status.branches[0].delivery.route', 'Unsupported value: "kafka"'] },
    { what: 'no route', delivery: { stream: 'ORDERS', sequence: '42' }, expect: ['status.branches[0].delivery.route', 'Required value'] },
    { what: 'no stream', delivery: { route: 'nats', sequence: '42' }, expect: ['status.branches[0].delivery.stream', 'Required value'] },
    { what: 'no sequence', delivery: { route: 'nats', stream: 'ORDERS' }, expect: ['status.branches[0].delivery.sequence', 'Required value'] },
    { what: 'a numeric sequence', delivery: { ...nats, sequence: 42 }, expect: ['status.branches[0].delivery.sequence', 'must be of type string'] },
    { what: 'an empty sequence', delivery: { ...nats, sequence: '' }, expect: ['status.branches[0].delivery.sequence', 'should be at least 1 chars long'] },
    { what: 'an empty stream', delivery: { ...nats, stream: '' }, expect: ['status.branches[0].delivery.stream', 'should be at least 1 chars long'] },
    { what: 'a sequence longer than 64', delivery: { ...nats, sequence: '9'.repeat(65) }, expect: ['status.branches[0].delivery.sequence', 'Too long'] },
    { what: 'a stream longer than 512', delivery: { ...redis, stream: 'k'.repeat(513) }, expect: ['status.branches[0].delivery.stream', 'Too long'] },
    { what: 'duplicate not a boolean', delivery: { ...redis, duplicate: 'yes' }, expect: ['status.branches[0].delivery.duplicate', 'must be of type boolean'] },
  ])('refuses a delivery with $what', async ({ delivery, expect: fragments }) => {
    const created = await create(tx(brokerMessage()));
    const msg = await refused(replaceStatus({ ...created, status: { phase: 'Delivering', branches: [{ name: 'points', state: 'Delivered', attempts: 1, delivery }] } }));
    for (const f of fragments) expect(msg).toContain(f);
  });
});

// Status forgery, where the chart's status guard (a ValidatingAdmissionPolicy) is absent, as here:
// the CRD's own rules keep a status consistent with itself and a decision write-once.
describe('DistributedTransaction CRD: status rules', () => {
  const branches = (state: string) => tcc().branches.map((b: Obj) => ({ name: b.name, state, attempts: 1 }));

  it('refuses a terminal phase whose branches are not in the matching state; accepts the one the engine writes', async () => {
    const created = await create(tx(tcc()));
    const trying = await replaceStatus({ ...created, status: { phase: 'Trying', branches: branches('Trying') } });
    for (const status of [
      { phase: 'Committed', decision: 'Confirm', branches: branches('Trying') },
      { phase: 'Committed', decision: 'Confirm', branches: branches('Confirmed').slice(1) },
      { phase: 'Committed', decision: 'Confirm' },
      { phase: 'Aborted', decision: 'Cancel', branches: branches('Prepared') },
      { phase: 'Completed', branches: branches('Executing') },
      { phase: 'Delivered', branches: branches('Delivering') },
    ]) {
      expect(await refused(replaceStatus({ ...trying, status })), JSON.stringify(status)).toContain('status.phase: a terminal phase needs every branch');
    }
    const done = await replaceStatus({ ...trying, status: { phase: 'Committed', decision: 'Confirm', branches: branches('Confirmed') } });
    expect(done.status.phase).toBe('Committed');
    // Failed carries whatever the branches were when it failed.
    const other = await create(tx(tcc()));
    await replaceStatus({ ...other, status: { phase: 'Failed', branches: branches('Trying') } });
  });

  it('refuses changing or removing a persisted decision or decisionTime', async () => {
    const created = await create(tx(tcc()));
    const decided = await replaceStatus({
      ...created,
      status: { phase: 'Confirming', decision: 'Confirm', decisionTime: '2025-01-01T00:00:00Z', branches: branches('Prepared') },
    });
    const changed = { ...decided.status, decision: 'Cancel', phase: 'Cancelling' };
    expect(await refused(replaceStatus({ ...decided, status: changed }))).toContain('status.decision is write-once');
    const { decision: _d, ...removed } = decided.status;
    expect(await refused(replaceStatus({ ...decided, status: removed }))).toContain('status.decision is write-once');
    expect(await refused(replaceStatus({ ...decided, status: { ...decided.status, decisionTime: '2026-01-01T00:00:00Z' } }))).toContain(
      'status.decisionTime is write-once',
    );
    // The same decision, with the rest of the status moving on, is accepted.
    const failed = await replaceStatus({ ...decided, status: { ...decided.status, phase: 'Failed' } });
    expect(failed.status.decision).toBe('Confirm');
  });
});

describe('kubectl', () => {
  const kubectl = (...args: string[]) =>
    execFileSync(testenvKubectl(), ['--kubeconfig', kubeconfigPath(), '-n', ns, ...args], { encoding: 'utf8' });
  const columns = (line: string) => line.trim().split(/\s{2,}/);

  it('shows Mode, Phase, Branches, Age (and Message with -o wide) via the short name and the category', async () => {
    const created = await create(tx(tcc(), 'printer'));
    await replaceStatus({ ...created, status: { phase: 'Trying', progress: '1/4', message: 'Trying: waiting for every branch' } });

    const [header, ...rows] = kubectl('get', 'dtx').trim().split('\n');
    expect(columns(header!)).toEqual(['NAME', 'MODE', 'PHASE', 'BRANCHES', 'AGE']);
    const row = rows.map(columns).find((c) => c[0] === 'printer');
    expect(row?.slice(0, 4)).toEqual(['printer', 'TCC', 'Trying', '1/4']);

    const [wideHeader, ...wideRows] = kubectl('get', 'dtx', '-o', 'wide').trim().split('\n');
    expect(columns(wideHeader!)).toEqual(['NAME', 'MODE', 'PHASE', 'BRANCHES', 'AGE', 'MESSAGE']);
    expect(wideRows.map(columns).find((c) => c[0] === 'printer')?.[5]).toBe('Trying: waiting for every branch');

    expect(kubectl('get', 'kubetx', '-o', 'name')).toContain('distributedtransaction.kubetx.io/printer');
    expect(kubectl('get', 'distributedtransactions.kubetx.io', 'printer', '-o', 'name').trim()).toBe('distributedtransaction.kubetx.io/printer');
  });

  it('kubectl explain describes the fields', () => {
    const out = kubectl('explain', 'dtx.spec.message.decision');
    expect(out).toMatch(/only spec field that may change after creation/);
  });

  it('kubectl explain describes the broker destination and its delivery status', () => {
    expect(kubectl('explain', 'dtx.spec.branches.broker.subject')).toMatch(/<prefix>\.<namespace>\.<subject>/);
    expect(kubectl('explain', 'dtx.spec.branches.broker.key')).toMatch(/Default the\s+transaction's name/);
    expect(kubectl('explain', 'dtx.status.branches.delivery.route')).toMatch(/ENUM:\s+nats\s+redis/);
  });
});

/**
 * Seeding etcd directly, for the scale figure only. Through the API server
 * this machine creates about 100 objects a second and the operator handles
 * 10–30 transactions a second, so 10,000 real transactions do not fit in the
 * benchmark's 10 minutes. Instead a few hundred are made for real, and the
 * rest are byte-for-byte copies of a real committed and a real pending one
 * (new name and uid), written to etcd one key per request through etcd's
 * JSON gateway. The API server's watch cache picks them up like any
 * other write; the operator lists/watches them as usual.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GROUP, PLURAL } from '../../src/api/types.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The etcd client URL, from kube-apiserver's command line. */
export function etcdUrl(apiserverPid: number): string {
  const args = readFileSync(`/proc/${apiserverPid}/cmdline`, 'utf8').split('\0');
  const flag = args.find((a) => a.startsWith('--etcd-servers='));
  if (!flag) throw new Error('kube-apiserver has no --etcd-servers flag');
  return flag.slice('--etcd-servers='.length).split(',')[0]!;
}

const keyOf = (ns: string, name: string) => `/registry/${GROUP}/${PLURAL}/${ns}/${name}`;

/** The stored JSON of one object (the API server stores custom resources as JSON). */
export async function readStored(etcd: string, ns: string, name: string): Promise<Record<string, any>> {
  const r = (await (await fetch(`${etcd}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(keyOf(ns, name)) }) })).json()) as { kvs?: Array<{ value: string }> };
  if (!r.kvs?.[0]) throw new Error(`etcd has no ${keyOf(ns, name)}`);
  return JSON.parse(Buffer.from(r.kvs[0].value, 'base64').toString('utf8')) as Record<string, any>;
}

/**
 * Writes copies of `template` named names[i] (fresh uids), one key per request
 * (32 at a time): the API server's watch cache needs every object at a
 * revision of its own — keys written by one multi-key etcd transaction share a
 * revision, and some of their watch events are lost.
 */
export async function seedCopies(etcd: string, ns: string, template: Record<string, any>, names: string[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < names.length) {
        const name = names[next++]!;
        const value = JSON.stringify({ ...template, metadata: { ...template.metadata, name, uid: randomUUID() } });
        const res = await fetch(`${etcd}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(keyOf(ns, name)), value: b64(value) }) });
        if (!res.ok) throw new Error(`etcd put: HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
        await res.arrayBuffer();
      }
    }),
  );
}

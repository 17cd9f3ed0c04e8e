import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { listInPages } from '../../src/controller/list-pages.js';

type Obj = k8s.KubernetesObject & { n: number };
// Custom objects' lists are raw JSON: the token is `continue` (typed lists: `_continue`).
const page = (items: number[], cont?: string, rv = '7'): k8s.KubernetesListObject<Obj> => ({
  metadata: { resourceVersion: rv, ...(cont ? { continue: cont } : {}) } as k8s.V1ListMeta,
  items: items.map((n) => ({ n, metadata: { name: `o${n}` } })),
});

describe('listInPages', () => {
  it('follows continue tokens, slims every item, returns one list with the snapshot resourceVersion', async () => {
    const asked: Array<string | undefined> = [];
    const pages: Record<string, k8s.KubernetesListObject<Obj>> = { first: page([1, 2], 'c1'), c1: page([3, 4], 'c2'), c2: page([5]) };
    const list = await listInPages<Obj>(async (c) => (asked.push(c), pages[c ?? 'first']!), (o) => ({ ...o, n: o.n * 10 }));
    expect(asked).toEqual([undefined, 'c1', 'c2']);
    expect(list.items.map((o) => o.n)).toEqual([10, 20, 30, 40, 50]);
    expect(list.metadata).toEqual({ resourceVersion: '7' });
  });

  it('restarts from the beginning when a continue token expired (410)', async () => {
    let calls = 0;
    const list = await listInPages<Obj>(async (c) => {
      calls++;
      if (calls === 2) throw Object.assign(new Error('expired'), { code: 410 });
      return c ? page([2]) : page([1], 'c1');
    });
    expect(calls).toBe(4);
    expect(list.items.map((o) => o.n)).toEqual([1, 2]);
  });

  it('passes other errors on', async () => {
    await expect(listInPages<Obj>(async () => Promise.reject(Object.assign(new Error('forbidden'), { code: 403 })))).rejects.toThrow('forbidden');
  });
});

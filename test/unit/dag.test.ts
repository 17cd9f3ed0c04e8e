import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildDag,
  descendants,
  readySet,
  reverseReadySet,
  reverseTopologicalOrder,
  topologicalOrder,
} from '../../src/engine/dag.js';

const nodes = (spec: Record<string, unknown>) => Object.entries(spec).map(([name, dependsOn]) => ({ name, dependsOn }));

describe('buildDag', () => {
  it('accepts a diamond and orders dependencies first, ties in spec order', () => {
    const { dag, errors } = buildDag(nodes({ d: ['b', 'c'], b: ['a'], c: ['a'], a: undefined }));
    expect(errors).toEqual([]);
    expect(topologicalOrder(dag)).toEqual(['a', 'b', 'c', 'd']);
    expect(reverseTopologicalOrder(dag)).toEqual(['d', 'c', 'b', 'a']);
    expect(dag.dependents.get('a')).toEqual(['b', 'c']);
    expect([...descendants(dag, 'a')].sort()).toEqual(['b', 'c', 'd']);
    expect(descendants(dag, 'd').size).toBe(0);
  });

  it('names the field of every malformed entry, unknown name and self-dependency', () => {
    const { errors, dag } = buildDag(nodes({ a: ['a', 'x', '', 'b', 'b'], b: 'a', c: null }));
    expect(errors).toEqual([
      'spec.branches[0].dependsOn[0]: branch "a" cannot depend on itself',
      'spec.branches[0].dependsOn[1]: unknown branch "x"',
      'spec.branches[0].dependsOn[2]: must be a branch name',
      'spec.branches[1].dependsOn: must be a list of branch names',
    ]);
    expect(dag.deps.get('a')).toEqual(['b']); // valid entries kept, deduplicated
  });

  it('reports a cycle as a path starting at its first branch in spec order, using spec indexes', () => {
    const { errors } = buildDag([
      { name: 'root', index: 0 },
      { name: 'b', dependsOn: ['c'], index: 2 },
      { name: 'a', dependsOn: ['root', 'b'], index: 1 },
      { name: 'c', dependsOn: ['a'], index: 3 },
      { name: 'tail', dependsOn: ['c'], index: 4 },
    ]);
    expect(errors).toEqual(['spec.branches[1].dependsOn: dependency cycle a → b → c → a']);
    expect(buildDag(nodes({ a: ['b'], b: ['a'] })).errors).toEqual(['spec.branches[0].dependsOn: dependency cycle a → b → a']);
  });

  it('ready sets: forward waits on direct dependencies, reverse on every transitive dependent', () => {
    const { dag } = buildDag(nodes({ a: [], b: ['a'], c: ['b'], d: [] }));
    const done = new Set(['a']);
    expect(readySet(dag, (n) => !done.has(n), (n) => done.has(n))).toEqual(['b', 'd']);
    const settled = new Set(['c']);
    expect(reverseReadySet(dag, (n) => !settled.has(n), (n) => settled.has(n))).toEqual(['b', 'd']);
    settled.add('b');
    expect(reverseReadySet(dag, (n) => !settled.has(n), (n) => settled.has(n))).toEqual(['a', 'd']);
  });

  it('random graphs: acyclic ones sort completely with every edge respected; cyclic ones report exactly one cycle', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(fc.tuple(fc.nat(9), fc.nat(9)), { maxLength: 25 }), (n, edges) => {
        const names = Array.from({ length: n }, (_, i) => `n${i}`);
        const deps = new Map(names.map((x) => [x, new Set<string>()]));
        for (const [from, to] of edges) if (from < n && to < n && from !== to) deps.get(names[from]!)!.add(names[to]!);
        const { dag, errors } = buildDag(names.map((name) => ({ name, dependsOn: [...deps.get(name)!] })));
        const order = topologicalOrder(dag);
        if (errors.length === 0) {
          expect(order.slice().sort()).toEqual(names.slice().sort());
          for (const [x, ds] of deps) for (const d of ds) expect(order.indexOf(d)).toBeLessThan(order.indexOf(x));
        } else {
          expect(errors).toHaveLength(1);
          const path = /dependency cycle (.*)$/.exec(errors[0]!)![1]!.split(' → ');
          expect(path[0]).toBe(path[path.length - 1]);
          for (let i = 0; i + 1 < path.length; i++) expect(deps.get(path[i]!)!.has(path[i + 1]!)).toBe(true);
          expect(order.length).toBeLessThan(n);
        }
      }),
      { numRuns: 500 },
    );
  }, 30_000);
});

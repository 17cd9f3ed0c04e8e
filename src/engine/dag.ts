/**
 * Dependency graphs of Saga branches (`dependsOn`), as pure helpers.
 *
 * Why the engine validates what the CRD already rejects: it must stay safe on
 * any input (an older CRD, an object written around the API server), and an
 * order it cannot compute is an order it cannot compensate in.
 *
 * Edges point from a node to what it depends on. "Forward" order runs
 * dependencies first; "reverse" order (compensation) runs dependents first.
 */

export interface DagNodeSpec {
  /** Unique among the nodes. */
  name: string;
  dependsOn?: unknown;
  /** Position in spec.branches, for error messages (defaults to the position in the list). */
  index?: number;
}

export interface Dag {
  /** Node names, in input order. */
  readonly names: readonly string[];
  /** Direct dependencies, deduplicated, in the order written (invalid entries left out). */
  readonly deps: ReadonlyMap<string, readonly string[]>;
  /** Direct dependents, in node order. */
  readonly dependents: ReadonlyMap<string, readonly string[]>;
}

export interface DagCheck {
  dag: Dag;
  /** Each names its field, e.g. `spec.branches[2].dependsOn: dependency cycle a → b → a`. Empty = a valid DAG. */
  errors: string[];
}

const fieldOf = (index: number) => `spec.branches[${index}].dependsOn`;

/** Builds the graph and reports every malformed entry, unknown name, self-dependency and (one) cycle. */
export function buildDag(nodes: readonly DagNodeSpec[]): DagCheck {
  const names = nodes.map((n) => n.name);
  const known = new Set(names);
  const indexOf = new Map(nodes.map((n, i) => [n.name, n.index ?? i]));
  const errors: string[] = [];
  const deps = new Map<string, string[]>();
  for (const node of nodes) {
    const field = fieldOf(indexOf.get(node.name)!);
    const list: string[] = [];
    const raw = node.dependsOn;
    if (raw !== undefined && raw !== null && !Array.isArray(raw)) errors.push(`${field}: must be a list of branch names`);
    (Array.isArray(raw) ? raw : []).forEach((d: unknown, j) => {
      if (typeof d !== 'string' || d === '') errors.push(`${field}[${j}]: must be a branch name`);
      else if (d === node.name) errors.push(`${field}[${j}]: branch "${d}" cannot depend on itself`);
      else if (!known.has(d)) errors.push(`${field}[${j}]: unknown branch "${d}"`);
      else if (!list.includes(d)) list.push(d);
    });
    deps.set(node.name, list);
  }
  const dependents = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const n of names) for (const d of deps.get(n)!) dependents.get(d)!.push(n);
  const dag: Dag = { names, deps, dependents };

  const cycle = findCycle(dag, indexOf);
  if (cycle) errors.push(`${fieldOf(indexOf.get(cycle[0]!)!)}: dependency cycle ${cycle.join(' → ')}`);
  return { dag, errors };
}

/**
 * A cycle as [a, b, ..., a] (a depends on b, ...), starting at its first node in
 * spec order; undefined if none. Kahn's algorithm leaves exactly the nodes on
 * or behind a cycle, and each of them has a dependency among the leftovers, so
 * following such dependencies must come back to a node already seen.
 */
function findCycle(dag: Dag, indexOf: ReadonlyMap<string, number>): string[] | undefined {
  const sorted = new Set(topologicalOrder(dag));
  const left = dag.names.filter((n) => !sorted.has(n));
  if (left.length === 0) return undefined;
  const leftSet = new Set(left);
  const path: string[] = [];
  let at = left[0]!;
  while (!path.includes(at)) {
    path.push(at);
    at = dag.deps.get(at)!.find((d) => leftSet.has(d))!;
  }
  const loop = path.slice(path.indexOf(at));
  let start = 0;
  loop.forEach((n, i) => {
    if (indexOf.get(n)! < indexOf.get(loop[start]!)!) start = i;
  });
  const rotated = [...loop.slice(start), ...loop.slice(0, start)];
  return [...rotated, rotated[0]!];
}

/** Dependencies first; ties in input order. Nodes on or behind a cycle are left out. */
export function topologicalOrder(dag: Dag): string[] {
  const unmet = new Map(dag.names.map((n) => [n, dag.deps.get(n)!.length]));
  const order: string[] = [];
  let ready = dag.names.filter((n) => unmet.get(n) === 0);
  while (ready.length > 0) {
    order.push(...ready);
    const next = new Set<string>();
    for (const n of ready) {
      for (const d of dag.dependents.get(n)!) {
        unmet.set(d, unmet.get(d)! - 1);
        if (unmet.get(d) === 0) next.add(d);
      }
    }
    ready = dag.names.filter((n) => next.has(n));
  }
  return order;
}

/** Dependents first: the order compensation may follow. */
export function reverseTopologicalOrder(dag: Dag): string[] {
  return topologicalOrder(dag).reverse();
}

/** Every node that depends on `name`, directly or transitively. */
export function descendants(dag: Dag, name: string): Set<string> {
  const seen = new Set<string>();
  const stack = [...(dag.dependents.get(name) ?? [])];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(dag.dependents.get(n) ?? []));
  }
  return seen;
}

/** Nodes, in input order, that are `waiting` and whose direct dependencies are all `done`. */
export function readySet(dag: Dag, waiting: (name: string) => boolean, done: (name: string) => boolean): string[] {
  return dag.names.filter((n) => waiting(n) && dag.deps.get(n)!.every(done));
}

/** Nodes, in input order, that are `waiting` and whose dependents (transitively) are all `settled`. */
export function reverseReadySet(dag: Dag, waiting: (name: string) => boolean, settled: (name: string) => boolean): string[] {
  return dag.names.filter((n) => waiting(n) && [...descendants(dag, n)].every(settled));
}

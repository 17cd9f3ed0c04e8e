/**
 * What every verb gets: the parsed flags, the user's kubeconfig (KUBECONFIG,
 * --kubeconfig, --context, as kubectl reads them) and where to write.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../api/types.js';
import { defaultFieldManager } from '../controller/field-manager.js';

/** Who the CLI's writes are from, in metadata.managedFields. */
export const CLI_FIELD_MANAGER = 'kubectl-dtx';

export interface Flags {
  namespace?: string;
  'all-namespaces'?: boolean;
  selector?: string;
  phase?: string;
  output?: string;
  watch?: boolean;
  reason?: string;
  timeout?: string;
  kubeconfig?: string;
  context?: string;
  prefix?: string;
  help?: boolean;
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** stdout is a terminal (get -w redraws instead of printing lines). */
  tty: boolean;
  now: () => Date;
  /** Resolves when the user asks to stop (Ctrl-C); get -w stops watching. */
  interrupted: Promise<void>;
}

export interface Ctx extends Io {
  flags: Flags;
  /** Positional arguments after the verb. */
  args: string[];
  kc: k8s.KubeConfig;
  namespace: string;
  api: k8s.CustomObjectsApi;
}

/** A verb of `kubectl dtx`: registering one in verbs.ts is one line. */
export interface Verb {
  /** One usage line, e.g. "show NAME [-n NAMESPACE]". */
  usage: string;
  run(ctx: Ctx): Promise<number>;
}

export function loadKubeConfig(flags: Flags): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  if (flags.context) kc.setCurrentContext(flags.context);
  defaultFieldManager(kc, CLI_FIELD_MANAGER);
  return kc;
}

export function makeCtx(flags: Flags, args: string[], io: Io): Ctx {
  const kc = loadKubeConfig(flags);
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { ...io, flags, args, kc, namespace, api: kc.makeApiClient(k8s.CustomObjectsApi) };
}

export function ref(ctx: Ctx, name: string) {
  return { group: GROUP, version: VERSION, plural: PLURAL, namespace: ctx.namespace, name };
}

export async function getTx(ctx: Ctx, name: string): Promise<DistributedTransaction> {
  return (await ctx.api.getNamespacedCustomObject(ref(ctx, name))) as DistributedTransaction;
}

export async function listTx(ctx: Ctx, allNamespaces: boolean): Promise<DistributedTransaction[]> {
  const base = { group: GROUP, version: VERSION, plural: PLURAL, ...(ctx.flags.selector ? { labelSelector: ctx.flags.selector } : {}) };
  const list = (allNamespaces
    ? await ctx.api.listClusterCustomObject(base)
    : await ctx.api.listNamespacedCustomObject({ ...base, namespace: ctx.namespace })) as { items: DistributedTransaction[] };
  return list.items;
}

/** Phases after which nothing changes unless a human acts (Failed waits for one). */
export const FINAL_PHASES: ReadonlySet<string> = new Set(['Committed', 'Aborted', 'Completed', 'Compensated', 'Delivered', 'RolledBack', 'Exhausted', 'Failed']);

/** A usage error: printed with the usage, exit 2. */
export class UsageError extends Error {}

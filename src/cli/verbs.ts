/** The verbs of `kubectl dtx`, by name: adding a verb is one line here. */
import type { Verb } from './context.js';
import { abort, retry } from './verbs/intervene.js';
import { BROKER_FLAGS, BROKER_SUBCOMMANDS, broker } from './verbs/broker.js';
import { completion, completionWords } from './verbs/completion.js';
import { get } from './verbs/get.js';
import { list } from './verbs/list.js';
import { show } from './verbs/show.js';
import { shards } from './verbs/shards.js';
import { DASHBOARD_FLAGS, dashboard } from '../dashboard/verb.js';

export const verbs: Record<string, Verb> = {
  list,
  get,
  show,
  retry,
  abort,
  shards,
  completion,
  dashboard,
  broker,
};

/** Flags every verb accepts (parseArgs options); a verb ignores those that do not concern it. */
export const FLAGS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  selector: { type: 'string', short: 'l' },
  phase: { type: 'string' },
  output: { type: 'string', short: 'o' },
  watch: { type: 'boolean', short: 'w' },
  reason: { type: 'string' },
  timeout: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  /** shards: the operator's --shard-lease-prefix. */
  prefix: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...DASHBOARD_FLAGS,
  ...BROKER_FLAGS,
} as const;

completionWords.verbs = Object.keys(verbs);
completionWords.subcommands = { completion: ['bash', 'zsh', 'fish'], broker: [...BROKER_SUBCOMMANDS] };
const spellings = (long: string, o: { type: string; short?: string }) => [`--${long}`, ...(o.short ? [`-${o.short}`] : [])];
completionWords.flags = Object.entries(FLAGS).flatMap(([long, o]) => spellings(long, o));
completionWords.valueFlags = Object.entries(FLAGS).flatMap(([long, o]) => (o.type === 'string' ? spellings(long, o) : []));

/** Every rule of the kit, by service group, in the order they run. */
import type { ServiceGroup } from '../flags.js';
import type { Rule } from '../kit.js';
import { receiverRules } from './receiver.js';
import { sagaRules } from './saga.js';
import { sourceRules } from './source.js';
import { tccRules } from './tcc.js';

export const RULES: Record<ServiceGroup, Rule[]> = {
  tcc: tccRules,
  saga: sagaRules,
  receiver: receiverRules,
  source: sourceRules,
};

export const ALL_RULES: Rule[] = [...tccRules, ...sagaRules, ...receiverRules, ...sourceRules];

/**
 * Runs the rules of the chosen service groups one after another against one
 * participant and collects a verdict per rule. A rule's own failure (a
 * RuleFailed) is its FAIL reason; anything else it throws is reported as a
 * FAIL too, never as a crash of the kit.
 */
import * as grpc from '@grpc/grpc-js';
import { codeName, connect } from './client.js';
import type { KitOptions, ServiceGroup } from './flags.js';
import { Kit, RuleFailed } from './kit.js';
import { RULES } from './rules/index.js';

export interface RuleVerdict {
  id: string;
  group: ServiceGroup;
  pass: boolean;
  reason: string;
  durationMs: number;
}

export interface KitReport {
  target: string;
  hook: string;
  services: ServiceGroup[];
  rules: RuleVerdict[];
  passed: number;
  failed: number;
  durationMs: number;
  ok: boolean;
}

/** The target or its hook cannot be used at all (exit code 2). */
export class Unreachable extends Error {
  override readonly name = 'Unreachable';
}

export interface RunHooks {
  /** Called as each rule finishes (the CLI prints it at once). */
  onVerdict?: (v: RuleVerdict) => void;
}

export async function runConformance(options: KitOptions, hooks: RunHooks = {}): Promise<KitReport> {
  const started = Date.now();
  const conns = connect({ target: options.target, hook: options.hook, ...(options.tls ? { tls: options.tls } : {}), deadlineMs: options.deadlineMs });
  try {
    await preflight(options, conns);
    const kit = new Kit(options, conns);
    const rules: RuleVerdict[] = [];
    for (const group of options.services) {
      for (const rule of RULES[group]) {
        kit.rule = rule.id;
        const t0 = Date.now();
        let pass = true;
        let reason: string;
        try {
          reason = await rule.run(kit);
        } catch (err) {
          pass = false;
          reason = err instanceof RuleFailed ? err.message : `the kit hit an error: ${(err as Error).message}`;
        }
        const v: RuleVerdict = { id: rule.id, group, pass, reason: oneLine(reason), durationMs: Date.now() - t0 };
        rules.push(v);
        hooks.onVerdict?.(v);
      }
    }
    const failed = rules.filter((r) => !r.pass).length;
    return {
      target: options.target,
      hook: options.hook,
      services: options.services,
      rules,
      passed: rules.length - failed,
      failed,
      durationMs: Date.now() - started,
      ok: failed === 0,
    };
  } finally {
    conns.close();
  }
}

/** Connects to the target and the hook, and checks the hook answers at all. */
async function preflight(options: KitOptions, conns: ReturnType<typeof connect>): Promise<void> {
  const wait = Math.max(options.deadlineMs, 1000);
  try {
    await conns.target[0]!.ready(wait);
  } catch (err) {
    throw new Unreachable(`cannot connect to --target ${options.target}: ${(err as Error).message}`);
  }
  try {
    await conns.hook.channel.ready(wait);
  } catch (err) {
    throw new Unreachable(`cannot connect to --hook ${options.hook}: ${(err as Error).message}`);
  }
  const probe = await conns.hook.readAccount('0');
  if (probe.code === grpc.status.UNIMPLEMENTED) {
    throw new Unreachable(`${options.hook} does not serve kubetx.conformance.v1.ConformanceHook (docs/participants.md, "Checking a participant: the conformance kit")`);
  }
  if (probe.code !== grpc.status.OK) throw new Unreachable(`hook ReadAccount on ${options.hook} answered ${codeName(probe.code)}: ${probe.details}`);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

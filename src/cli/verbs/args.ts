import { UsageError, type Ctx } from '../context.js';

/** The verb's one NAME argument. */
export function needName(ctx: Ctx, verb: string): string {
  const [name, ...extra] = ctx.args;
  if (!name) throw new UsageError(`${verb}: NAME is required`);
  if (extra.length) throw new UsageError(`${verb}: unexpected arguments: ${extra.join(' ')}`);
  return name;
}

/**
 * The gRPC path of each participant method, from the generated service
 * definitions: one table for the operator's caller, its tracing and the
 * conformance kit.
 */
import type { Method } from '../engine/types.js';
import { MessageReceiverService, MessageSourceService, SagaParticipantService, TccParticipantService } from '../gen/kubetx/v1/participant.js';

/** The branch methods' paths (CheckPrepared is not a branch call). */
export const BRANCH_METHOD_PATHS: Readonly<Record<Exclude<Method, 'CheckPrepared'>, string>> = {
  Try: TccParticipantService.try.path,
  Confirm: TccParticipantService.confirm.path,
  Cancel: TccParticipantService.cancel.path,
  Execute: SagaParticipantService.execute.path,
  Compensate: SagaParticipantService.compensate.path,
  Deliver: MessageReceiverService.deliver.path,
};

/** The call's gRPC path, e.g. "/kubetx.v1.TccParticipant/Try". */
export function methodPath(method: Method): string {
  return method === 'CheckPrepared' ? MessageSourceService.checkPrepared.path : BRANCH_METHOD_PATHS[method];
}

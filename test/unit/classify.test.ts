/** The error contract of docs/participants.md, code by code. */
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../../src/participants/classify.js';

const err = (code: Status, details: string) => ({ code, details, message: details }) as ServiceError;
const TCC = 'kubetx.v1.TccParticipant';

describe('classifyError', () => {
  it('ABORTED and FAILED_PRECONDITION refuse Try/Execute only', () => {
    expect(classifyError('Try', TCC, err(Status.ABORTED, 'no stock')).kind).toBe('refused');
    expect(classifyError('Execute', TCC, err(Status.FAILED_PRECONDITION, 'no seat')).kind).toBe('refused');
    expect(classifyError('Confirm', TCC, err(Status.ABORTED, 'x')).kind).toBe('retryable');
  });

  it('INVALID_ARGUMENT refuses Try/Execute at once and is retried (with a reason) on the second phase', () => {
    expect(classifyError('Try', TCC, err(Status.INVALID_ARGUMENT, 'amount'))).toEqual({ kind: 'refused', message: 'INVALID_ARGUMENT: amount', reason: 'InvalidArgument' });
    expect(classifyError('Cancel', TCC, err(Status.INVALID_ARGUMENT, 'amount'))).toMatchObject({ kind: 'retryable', reason: 'InvalidArgument' });
  });

  it('UNIMPLEMENTED is EndpointMisconfigured, naming the service expected', () => {
    const c = classifyError('Try', TCC, err(Status.UNIMPLEMENTED, 'Received HTTP status code 404'));
    expect(c).toMatchObject({ kind: 'refused', reason: 'EndpointMisconfigured' });
    expect(c.message).toBe(`EndpointMisconfigured: the endpoint does not serve ${TCC} (UNIMPLEMENTED: Received HTTP status code 404): point the endpoint at the participant's ${TCC} port`);
    expect(classifyError('Deliver', 'kubetx.v1.MessageReceiver', err(Status.UNIMPLEMENTED, '')).kind).toBe('retryable');
  });

  it("grpc-js's Protocol error (no gRPC server at the port) is EndpointMisconfigured; other UNAVAILABLE is retried", () => {
    const c = classifyError('Execute', 'kubetx.v1.SagaParticipant', err(Status.UNAVAILABLE, 'No connection established. Last error: Protocol error (2026-12-06T13:25:23.171Z)'));
    expect(c).toMatchObject({ kind: 'refused', reason: 'EndpointMisconfigured' });
    expect(c.message).toMatch(/^EndpointMisconfigured: the endpoint is not a gRPC server/);
    expect(classifyError('Try', TCC, err(Status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:1'))).toEqual({ kind: 'retryable', message: 'UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:1' });
  });

  it('DEADLINE_EXCEEDED is a timeout; any other code is retried', () => {
    expect(classifyError('Try', TCC, err(Status.DEADLINE_EXCEEDED, 'deadline')).kind).toBe('timeout');
    expect(classifyError('Try', TCC, err(Status.INTERNAL, 'boom')).kind).toBe('retryable');
    expect(classifyError('Try', TCC, err(1234 as Status, 'made up')).kind).toBe('retryable');
  });
});

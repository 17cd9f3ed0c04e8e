package io.kubetx.participant;

/**
 * A Saga participant ({@code kubetx.v1.SagaParticipant}): Execute does the work, Compensate undoes
 * it. Wrap database handlers with {@code Barrier.saga(...)}. Exceptions are answered per {@link
 * Statuses}.
 */
public interface SagaHandler {
  Response onExecute(Request r) throws Exception;

  Response onCompensate(Request r) throws Exception;
}

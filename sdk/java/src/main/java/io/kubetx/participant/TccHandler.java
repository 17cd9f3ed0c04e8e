package io.kubetx.participant;

/**
 * A TCC participant ({@code kubetx.v1.TccParticipant}). Try reserves, Confirm makes the reservation
 * effective, Cancel releases it. Every method may be called more than once and out of order: wrap
 * your database handlers with {@code Barrier.tcc(...)} for idempotency, null compensation and
 * anti-hanging. Exceptions are answered per {@link Statuses}.
 */
public interface TccHandler {
  Response onTry(Request r) throws Exception;

  Response onConfirm(Request r) throws Exception;

  Response onCancel(Request r) throws Exception;
}

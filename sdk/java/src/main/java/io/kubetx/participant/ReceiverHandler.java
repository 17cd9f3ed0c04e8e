package io.kubetx.participant;

/**
 * A receiver of reliable messages and notifications ({@code kubetx.v1.MessageReceiver}). Deliveries
 * are at least once: wrap database handlers with {@code Barrier.receiver(...)} to deduplicate.
 */
@FunctionalInterface
public interface ReceiverHandler {
  Response onDeliver(Request r) throws Exception;
}

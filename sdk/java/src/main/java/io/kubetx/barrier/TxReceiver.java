package io.kubetx.barrier;

import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import java.sql.Connection;

/** A message receiver whose Deliver runs inside the barrier's transaction, deduplicated ({@link Barrier#receiver}). */
@FunctionalInterface
public interface TxReceiver {
  Response onDeliver(Connection tx, Request r) throws Exception;
}

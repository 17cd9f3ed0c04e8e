package io.kubetx.barrier;

import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import java.sql.Connection;

/** A Saga participant whose methods run inside the barrier's transaction ({@link Barrier#saga}). */
public interface TxSaga {
  Response onExecute(Connection tx, Request r) throws Exception;

  Response onCompensate(Connection tx, Request r) throws Exception;
}

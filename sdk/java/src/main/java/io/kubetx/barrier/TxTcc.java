package io.kubetx.barrier;

import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import java.sql.Connection;

/** A TCC participant whose methods run inside the barrier's transaction ({@link Barrier#tcc}). */
public interface TxTcc {
  Response onTry(Connection tx, Request r) throws Exception;

  Response onConfirm(Connection tx, Request r) throws Exception;

  Response onCancel(Connection tx, Request r) throws Exception;
}

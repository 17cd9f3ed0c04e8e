package io.kubetx.barrier;

import io.kubetx.participant.Request;
import io.kubetx.participant.Response;
import java.sql.Connection;

/**
 * A business handler run inside the barrier: it does its reads and writes through {@code tx} (a
 * connection with auto-commit off, in the barrier's transaction) and must not commit, roll back
 * or close it. A null response is an empty OK. Any exception rolls back the handler's effect and
 * the barrier row together.
 */
@FunctionalInterface
public interface TxHandler {
  Response handle(Connection tx, Request r) throws Exception;
}

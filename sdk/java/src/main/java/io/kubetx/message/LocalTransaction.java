package io.kubetx.message;

import java.sql.Connection;

/** The business change of a reliable message's upstream, run by {@link Outbox#runLocal}. */
@FunctionalInterface
public interface LocalTransaction<T> {
  T run(Connection tx) throws Exception;
}

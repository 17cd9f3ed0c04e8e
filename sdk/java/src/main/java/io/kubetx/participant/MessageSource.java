package io.kubetx.participant;

import io.kubetx.proto.v1.CheckPreparedRequest;
import io.kubetx.proto.v1.CheckPreparedResponse;

/**
 * The upstream of a reliable message ({@code kubetx.v1.MessageSource}), asked whether its local
 * transaction committed. {@code io.kubetx.message.Outbox} implements it.
 */
@FunctionalInterface
public interface MessageSource {
  CheckPreparedResponse.State checkPrepared(CheckPreparedRequest r) throws Exception;
}

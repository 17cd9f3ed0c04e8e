package io.kubetx.message;

import java.util.Objects;

/**
 * Identifies a prepared message: the DistributedTransaction's metadata.uid, namespace and name.
 */
public record MessageKey(String uid, String namespace, String name) {
  public MessageKey {
    uid = Objects.requireNonNullElse(uid, "");
    namespace = Objects.requireNonNullElse(namespace, "");
    name = Objects.requireNonNullElse(name, "");
  }
}

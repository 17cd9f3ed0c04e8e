package io.kubetx.examples.bank;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

/**
 * --database-url: a JDBC URL ({@code jdbc:postgresql://host:5432/bank?user=bank}) as it is, or the
 * libpq-style URL bank-go takes ({@code postgres://user:password@host:5432/bank?sslmode=disable}),
 * turned into a JDBC URL with the user and password as connection properties.
 */
record DatabaseUrl(String jdbcUrl, Properties properties) {

  static DatabaseUrl parse(String url) {
    Properties props = new Properties();
    if (url.startsWith("jdbc:")) {
      return new DatabaseUrl(url, props);
    }
    if (!url.startsWith("postgres://") && !url.startsWith("postgresql://")) {
      throw new IllegalArgumentException("--database-url: want jdbc:postgresql://… or postgres://…, got " + url.replaceAll("//[^@/]*@", "//…@"));
    }
    URI u = URI.create(url);
    String userInfo = u.getRawUserInfo();
    if (userInfo != null) {
      int colon = userInfo.indexOf(':');
      props.setProperty("user", decode(colon < 0 ? userInfo : userInfo.substring(0, colon)));
      if (colon >= 0) {
        props.setProperty("password", decode(userInfo.substring(colon + 1)));
      }
    }
    String host = u.getHost() == null ? "localhost" : u.getHost();
    String port = u.getPort() < 0 ? "" : ":" + u.getPort();
    String db = u.getRawPath() == null ? "" : u.getRawPath();
    String query = u.getRawQuery() == null ? "" : "?" + u.getRawQuery();
    return new DatabaseUrl("jdbc:postgresql://" + host + port + db + query, props);
  }

  private static String decode(String s) {
    return URLDecoder.decode(s, StandardCharsets.UTF_8);
  }
}

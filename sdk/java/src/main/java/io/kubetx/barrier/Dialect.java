package io.kubetx.barrier;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.Locale;

/** The SQL dialect of the database behind a DataSource. */
public enum Dialect {
  /** PostgreSQL (driver org.postgresql:postgresql). */
  POSTGRES,
  /** MySQL 8 or MariaDB 10.11+, InnoDB (org.mariadb.jdbc:mariadb-java-client or com.mysql:mysql-connector-j). */
  MYSQL;

  /** The dialect of a connection, from its driver's product name. */
  public static Dialect detect(Connection c) throws SQLException {
    String product = c.getMetaData().getDatabaseProductName().toLowerCase(Locale.ROOT);
    if (product.contains("postgres")) {
      return POSTGRES;
    }
    if (product.contains("mysql") || product.contains("mariadb")) {
      return MYSQL;
    }
    throw new SQLException("kubetx barrier: unsupported database " + product + " (want PostgreSQL, MySQL or MariaDB)");
  }
}

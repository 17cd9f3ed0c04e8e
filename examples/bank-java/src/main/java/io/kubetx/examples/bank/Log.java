package io.kubetx.examples.bank;

import com.google.gson.Gson;
import java.io.PrintStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * One JSON object per line on stdout, as bank-go's slog JSON handler writes:
 * {@code {"time":…,"level":"INFO","msg":"bank listening","bank":"alpha","address":"127.0.0.1:50111"}}.
 * The SDK's lines (System.Logger → java.util.logging) come out the same way, with the logger name.
 */
final class Log {
  private static final Gson GSON = new com.google.gson.GsonBuilder().disableHtmlEscaping().create();
  private final String bank;
  private final PrintStream out = System.out;

  Log(String bank) {
    this.bank = bank;
  }

  synchronized void write(String level, String msg, Map<String, ?> attrs) {
    Map<String, Object> line = new LinkedHashMap<>();
    line.put("time", Instant.now().toString());
    line.put("level", level);
    line.put("msg", msg);
    line.put("bank", bank);
    if (attrs != null) {
      line.putAll(attrs);
    }
    out.println(GSON.toJson(line));
    out.flush();
  }

  void info(String msg, Map<String, ?> attrs) {
    write("INFO", msg, attrs);
  }

  void warn(String msg, Map<String, ?> attrs) {
    write("WARN", msg, attrs);
  }

  void error(String msg, Map<String, ?> attrs) {
    write("ERROR", msg, attrs);
  }

  /** Routes java.util.logging (and so the SDK's System.Logger) into these lines. */
  void captureJul() {
    Logger root = Logger.getLogger("");
    for (Handler h : root.getHandlers()) {
      root.removeHandler(h);
    }
    root.addHandler(new Handler() {
      @Override
      public void publish(LogRecord r) {
        if (!isLoggable(r)) {
          return;
        }
        String level = r.getLevel().intValue() >= Level.SEVERE.intValue() ? "ERROR"
            : r.getLevel().intValue() >= Level.WARNING.intValue() ? "WARN" : "INFO";
        Map<String, Object> attrs = new LinkedHashMap<>();
        attrs.put("logger", r.getLoggerName());
        if (r.getThrown() != null) {
          attrs.put("err", r.getThrown().toString());
        }
        write(level, r.getMessage(), attrs);
      }

      @Override
      public void flush() {
        out.flush();
      }

      @Override
      public void close() {}
    });
    root.setLevel(Level.INFO);
  }
}

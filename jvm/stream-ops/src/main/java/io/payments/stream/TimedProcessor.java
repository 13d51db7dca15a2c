package io.payments.stream;

import java.util.ArrayList;
import java.util.List;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.StatefulProcessor;

/** A keyed processor with at most one event-time timer per key: when its state expires. */
abstract class TimedProcessor extends StatefulProcessor<String, Row, Row> {
  private static final long serialVersionUID = 1L;

  /** The key's timer, or Long.MIN_VALUE if it has none. */
  protected final long currentTimer() {
    long latest = Long.MIN_VALUE;
    for (long timer : timers()) {
      latest = Math.max(latest, timer);
    }
    return latest;
  }

  /** Make {@code expiryMs} the key's one timer. */
  protected final void resetTimer(long expiryMs) {
    List<Long> existing = timers();
    for (long timer : existing) {
      if (timer != expiryMs) {
        getHandle().deleteTimer(timer);
      }
    }
    if (!existing.contains(expiryMs)) {
      getHandle().registerTimer(expiryMs);
    }
  }

  private List<Long> timers() {
    List<Long> timers = new ArrayList<>();
    scala.collection.Iterator<Object> listed = getHandle().listTimers();
    while (listed.hasNext()) {
      timers.add((Long) listed.next());
    }
    return timers;
  }
}

package io.payments.stream;

import java.sql.Timestamp;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.StructType;

/** Small helpers over external {@link Row}s shared by the operators. */
final class Rows {
  static final long MICROS_PER_MS = 1_000L;
  static final long MICROS_PER_DAY = 86_400_000_000L;

  private Rows() {}

  /** The position of a column; a clear error naming what is missing. */
  static int index(StructType schema, String name) {
    for (int i = 0; i < schema.fields().length; i++) {
      if (schema.fields()[i].name().equals(name)) {
        return i;
      }
    }
    throw new IllegalArgumentException("stream operator input has no column '" + name + "': " + schema.simpleString());
  }

  /** Microseconds since the epoch of a timestamp value (java.sql.Timestamp, Instant or LocalDateTime). */
  static long micros(Object value) {
    if (value instanceof Timestamp ts) {
      return Math.floorDiv(ts.getTime(), 1000L) * 1_000_000L + ts.getNanos() / 1_000L;
    }
    if (value instanceof Instant instant) {
      return instant.getEpochSecond() * 1_000_000L + instant.getNano() / 1_000L;
    }
    if (value instanceof LocalDateTime local) {
      return micros(local.toInstant(ZoneOffset.UTC));
    }
    throw new IllegalArgumentException("not a timestamp: " + value);
  }

  /** A timestamp value of the same Java type as {@code like}, for {@code micros}. */
  static Object timestampLike(Object like, long micros) {
    Instant instant = Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L), Math.floorMod(micros, 1_000_000L) * 1_000L);
    if (like instanceof Instant) {
      return instant;
    }
    if (like instanceof LocalDateTime) {
      return LocalDateTime.ofInstant(instant, ZoneOffset.UTC);
    }
    return Timestamp.from(instant);
  }

  static Object[] values(Row row, int extra) {
    Object[] values = new Object[row.length() + extra];
    for (int i = 0; i < row.length(); i++) {
      values[i] = row.get(i);
    }
    return values;
  }

  static Row withValue(Row row, int index, Object value) {
    Object[] values = values(row, 0);
    values[index] = value;
    return RowFactory.create(values);
  }

  /** The rows in a list, so a key's rows of one micro-batch can be sorted and read twice. */
  static List<Row> drain(scala.collection.Iterator<Row> rows) {
    List<Row> list = new ArrayList<>();
    while (rows.hasNext()) {
      list.add(rows.next());
    }
    return list;
  }

  static scala.collection.Iterator<Row> iterator(List<Row> rows) {
    return scala.jdk.javaapi.CollectionConverters.asScala(rows.iterator());
  }

  /** Arrival order: Kafka produce time, then partition and offset (deterministic on a replay). */
  static Comparator<Row> arrival(int producedAt, int partition, int offset) {
    return Comparator.<Row>comparingLong(r -> micros(r.get(producedAt)))
        .thenComparingInt(r -> r.getInt(partition))
        .thenComparingLong(r -> r.getLong(offset));
  }
}

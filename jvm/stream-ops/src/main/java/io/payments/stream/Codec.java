package io.payments.stream;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * The operators' state values as compact bytes (state variables of Spark's BINARY type).
 *
 * <p>Why not rows: a state variable's encoder is generated code, made anew in every task (each
 * micro-batch and partition) for its schema; a whole transaction row (forty columns) made that a
 * fifth of the stream's CPU at 1,000 msg/s. A byte array's encoder is one field. Values keep their
 * Java type through a round trip (a Timestamp comes back a Timestamp, an Instant an Instant).
 */
final class Codec {
  private static final byte NULL = 0;
  private static final byte STRING = 1;
  private static final byte INT = 2;
  private static final byte LONG = 3;
  private static final byte BOOLEAN = 4;
  private static final byte DOUBLE = 5;
  private static final byte DECIMAL = 6;
  private static final byte TIMESTAMP = 7;
  private static final byte INSTANT = 8;
  private static final byte LOCAL_DATE_TIME = 9;
  private static final byte ROW = 10;
  private static final byte SEQ = 11;
  private static final byte BYTES = 12;

  private Codec() {}

  /** A writer of one state value. */
  static final class Out {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream(256);
    final DataOutputStream data = new DataOutputStream(bytes);

    void string(String value) {
      try {
        if (value == null) {
          data.writeInt(-1);
        } else {
          byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
          data.writeInt(utf8.length);
          data.write(utf8);
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    void longValue(long value) {
      try {
        data.writeLong(value);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    void intValue(int value) {
      try {
        data.writeInt(value);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    void booleanValue(boolean value) {
      try {
        data.writeBoolean(value);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** A row's values by position (its schema is the operator's, known on reading). */
    void row(Row row) {
      intValue(row.length());
      for (int i = 0; i < row.length(); i++) {
        value(row.get(i));
      }
    }

    void value(Object value) {
      try {
        writeValue(value);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    private void writeValue(Object value) throws IOException {
      if (value == null) {
        data.writeByte(NULL);
      } else if (value instanceof String s) {
        data.writeByte(STRING);
        string(s);
      } else if (value instanceof Integer i) {
        data.writeByte(INT);
        data.writeInt(i);
      } else if (value instanceof Long l) {
        data.writeByte(LONG);
        data.writeLong(l);
      } else if (value instanceof Boolean b) {
        data.writeByte(BOOLEAN);
        data.writeBoolean(b);
      } else if (value instanceof Double d) {
        data.writeByte(DOUBLE);
        data.writeDouble(d);
      } else if (value instanceof BigDecimal d) {
        data.writeByte(DECIMAL);
        data.writeInt(d.scale());
        byte[] unscaled = d.unscaledValue().toByteArray();
        data.writeInt(unscaled.length);
        data.write(unscaled);
      } else if (value instanceof Timestamp t) {
        data.writeByte(TIMESTAMP);
        data.writeLong(Rows.micros(t));
      } else if (value instanceof Instant t) {
        data.writeByte(INSTANT);
        data.writeLong(Rows.micros(t));
      } else if (value instanceof LocalDateTime t) {
        data.writeByte(LOCAL_DATE_TIME);
        data.writeLong(Rows.micros(t));
      } else if (value instanceof Row r) {
        data.writeByte(ROW);
        row(r);
      } else if (value instanceof scala.collection.Seq<?> seq) {
        data.writeByte(SEQ);
        data.writeInt(seq.size());
        scala.collection.Iterator<?> items = seq.iterator();
        while (items.hasNext()) {
          writeValue(items.next());
        }
      } else if (value instanceof byte[] b) {
        data.writeByte(BYTES);
        data.writeInt(b.length);
        data.write(b);
      } else {
        throw new IllegalArgumentException("no state encoding for " + value.getClass().getName());
      }
    }

    byte[] bytes() {
      try {
        data.flush();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return bytes.toByteArray();
    }
  }

  /** A reader of one state value, in the order it was written. */
  static final class In {
    final DataInputStream data;

    In(byte[] bytes) {
      data = new DataInputStream(new ByteArrayInputStream(bytes));
    }

    String string() {
      try {
        int length = data.readInt();
        if (length < 0) {
          return null;
        }
        byte[] utf8 = new byte[length];
        data.readFully(utf8);
        return new String(utf8, StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    long longValue() {
      try {
        return data.readLong();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    int intValue() {
      try {
        return data.readInt();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    boolean booleanValue() {
      try {
        return data.readBoolean();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    Row row() {
      int length = intValue();
      Object[] values = new Object[length];
      for (int i = 0; i < length; i++) {
        values[i] = value();
      }
      return RowFactory.create(values);
    }

    Object value() {
      try {
        return readValue();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    private Object readValue() throws IOException {
      byte tag = data.readByte();
      switch (tag) {
        case NULL:
          return null;
        case STRING:
          return string();
        case INT:
          return data.readInt();
        case LONG:
          return data.readLong();
        case BOOLEAN:
          return data.readBoolean();
        case DOUBLE:
          return data.readDouble();
        case DECIMAL: {
          int scale = data.readInt();
          byte[] unscaled = new byte[data.readInt()];
          data.readFully(unscaled);
          return new BigDecimal(new BigInteger(unscaled), scale);
        }
        case TIMESTAMP:
          return Rows.timestampLike(new Timestamp(0), data.readLong());
        case INSTANT:
          return Rows.timestampLike(Instant.EPOCH, data.readLong());
        case LOCAL_DATE_TIME:
          return Rows.timestampLike(LocalDateTime.ofEpochSecond(0, 0, ZoneOffset.UTC), data.readLong());
        case ROW:
          return row();
        case SEQ: {
          int size = data.readInt();
          List<Object> items = new ArrayList<>(size);
          for (int i = 0; i < size; i++) {
            items.add(readValue());
          }
          return scala.jdk.javaapi.CollectionConverters.asScala(items).toSeq();
        }
        case BYTES: {
          byte[] b = new byte[data.readInt()];
          data.readFully(b);
          return b;
        }
        default:
          throw new IllegalStateException("unknown state value tag " + tag);
      }
    }
  }
}

package io.payments.stream;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.ExpiredTimerInfo;
import org.apache.spark.sql.streaming.ValueState;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.streaming.TTLConfig;
import org.apache.spark.sql.streaming.TimeMode;
import org.apache.spark.sql.streaming.TimerValues;
import org.apache.spark.sql.types.StructType;

/**
 * The user rules' values, keyed by user.
 *
 * <p>{@code prev_country_minutes}: minutes since the user's previous transaction in (event time,
 * transaction id) order, when that one was in another country (else null), as the batch job's
 * {@code lag(country)}; {@code distinct_devices}: the user's distinct devices first seen on this
 * event's UTC day at or before it. {@code txn} rows join the history first; {@code signal} rows are
 * looked up only. Of the history before (watermark - lookback) only the newest entry is kept (the
 * "previous" of later lookups), and only while a geo jump to it is possible; device days before
 * that day go. The key expires by an event-time timer once nothing is left.
 */
public final class UserRulesProcessor extends TimedProcessor {
  private static final long serialVersionUID = 1L;
  static final String[] OUTPUT_COLUMNS = {"prev_country_minutes", "distinct_devices"};

  private final long geoJumpMicros;
  private final long lookbackMs;
  private final int kind;
  private final int eventTime;
  private final int transactionId;
  private final int country;
  private final int device;
  private transient ValueState<byte[]> state; // history (t_us, id, country), then device days (Codec)

  UserRulesProcessor(StructType schema, long geoJumpMs, long lookbackMs) {
    this.geoJumpMicros = geoJumpMs * Rows.MICROS_PER_MS;
    this.lookbackMs = lookbackMs;
    this.kind = Rows.index(schema, "row_kind");
    this.eventTime = Rows.index(schema, "event_time");
    this.transactionId = Rows.index(schema, "transaction_id");
    this.country = Rows.index(schema, "country");
    this.device = Rows.index(schema, "device_id");
  }

  @Override
  public void init(OutputMode outputMode, TimeMode timeMode) {
    state = getHandle().getValueState("user_state", Encoders.BINARY(), TTLConfig.NONE());
  }

  private record Seen(long micros, String transactionId, String country) {}

  private record Device(long day, String device, long firstMicros) {}

  private static final Comparator<Seen> BY_TIME = Comparator.comparingLong(Seen::micros).thenComparing(Seen::transactionId);
  private static final Comparator<Device> BY_DAY = Comparator.comparingLong(Device::day).thenComparing(Device::device);

  @Override
  public scala.collection.Iterator<Row> handleInputRows(String key, scala.collection.Iterator<Row> inputRows, TimerValues timerValues) {
    List<Row> rows = Rows.drain(inputRows);
    List<Seen> seen = new ArrayList<>();
    List<Device> firsts = new ArrayList<>();
    load(seen, firsts);
    boolean changed = false;
    for (Row row : rows) {
      if (TxnSignalsProcessor.TXN.equals(row.getString(kind))) {
        changed |= add(seen, firsts, row);
      }
    }
    seen.sort(BY_TIME);
    firsts.sort(BY_DAY);
    changed |= evict(seen, firsts, timerValues.getCurrentWatermarkInMs());
    List<Row> out = new ArrayList<>(rows.size());
    for (Row row : rows) {
      out.add(isRuled(row) ? looked(row, seen, firsts) : passedThrough(row));
    }
    if (changed) {
      save(seen, firsts);
    }
    long expiry = Long.MIN_VALUE;
    if (!seen.isEmpty()) {
      expiry = Math.floorDiv(seen.get(seen.size() - 1).micros() + geoJumpMicros, Rows.MICROS_PER_MS) + lookbackMs;
    }
    if (!firsts.isEmpty()) {
      long dayEndMs = (firsts.get(firsts.size() - 1).day() + 1) * (Rows.MICROS_PER_DAY / Rows.MICROS_PER_MS);
      expiry = Math.max(expiry, dayEndMs + lookbackMs);
    }
    if (expiry != Long.MIN_VALUE) {
      resetTimer(expiry);
    }
    return Rows.iterator(out);
  }

  private boolean isRuled(Row row) {
    String rowKind = row.getString(kind);
    return TxnSignalsProcessor.TXN.equals(rowKind) || TxnSignalsProcessor.SIGNAL.equals(rowKind);
  }

  /** A row of another kind (dead letter, duplicate, unmatched signal): unchanged, null values. */
  private static Row passedThrough(Row row) {
    return RowFactory.create(Rows.values(row, OUTPUT_COLUMNS.length));
  }

  @Override
  public scala.collection.Iterator<Row> handleExpiredTimer(String key, TimerValues timerValues, ExpiredTimerInfo expiredTimerInfo) {
    state.clear();
    return Rows.iterator(List.of());
  }

  private boolean add(List<Seen> seen, List<Device> firsts, Row row) {
    long t = Rows.micros(row.get(eventTime));
    String id = row.getString(transactionId);
    boolean changed = false;
    if (seen.stream().noneMatch(s -> s.micros() == t && s.transactionId().equals(id))) {
      seen.add(new Seen(t, id, row.getString(country)));
      changed = true;
    }
    String deviceId = row.getString(device);
    if (deviceId != null) {
      long day = Math.floorDiv(t, Rows.MICROS_PER_DAY);
      for (int i = 0; i < firsts.size(); i++) {
        Device known = firsts.get(i);
        if (known.day() == day && known.device().equals(deviceId)) {
          if (t < known.firstMicros()) {
            firsts.set(i, new Device(day, deviceId, t));
            changed = true;
          }
          return changed;
        }
      }
      firsts.add(new Device(day, deviceId, t));
      changed = true;
    }
    return changed;
  }

  /** Drop what no later row can read; true if anything went. */
  private boolean evict(List<Seen> seen, List<Device> firsts, long watermarkMs) {
    if (watermarkMs <= 0) {
      return false;
    }
    long earliest = (watermarkMs - lookbackMs) * Rows.MICROS_PER_MS;
    int firstKept = 0;
    while (firstKept < seen.size() && seen.get(firstKept).micros() < earliest) {
      firstKept++;
    }
    if (firstKept > 0 && seen.get(firstKept - 1).micros() >= earliest - geoJumpMicros) {
      firstKept--; // the newest entry before `earliest`: the previous one of later lookups
    }
    boolean changed = firstKept > 0;
    seen.subList(0, firstKept).clear();
    long dayFloor = Math.floorDiv(earliest, Rows.MICROS_PER_DAY);
    changed |= firsts.removeIf(d -> d.day() < dayFloor);
    return changed;
  }

  private Row looked(Row row, List<Seen> seen, List<Device> firsts) {
    long t = Rows.micros(row.get(eventTime));
    String id = row.getString(transactionId);
    String here = row.getString(country);
    Seen previous = null;
    for (Seen entry : seen) {
      if (entry.micros() < t || (entry.micros() == t && entry.transactionId().compareTo(id) < 0)) {
        previous = entry;
      } else {
        break;
      }
    }
    Double minutes = null;
    if (previous != null && previous.country() != null && !previous.country().isEmpty()
        && here != null && !here.isEmpty() && !Objects.equals(previous.country(), here)) {
      minutes = (t - previous.micros()) / 60_000_000.0;
    }
    long day = Math.floorDiv(t, Rows.MICROS_PER_DAY);
    int distinct = 0;
    for (Device d : firsts) {
      if (d.day() == day && d.firstMicros() <= t) {
        distinct++;
      }
    }
    Object[] values = Rows.values(row, OUTPUT_COLUMNS.length);
    values[row.length()] = minutes;
    values[row.length() + 1] = distinct;
    return RowFactory.create(values);
  }

  private void load(List<Seen> seen, List<Device> firsts) {
    if (!state.exists()) {
      return;
    }
    Codec.In in = new Codec.In(state.get());
    int count = in.intValue();
    for (int i = 0; i < count; i++) {
      seen.add(new Seen(in.longValue(), in.string(), in.string()));
    }
    count = in.intValue();
    for (int i = 0; i < count; i++) {
      firsts.add(new Device(in.longValue(), in.string(), in.longValue()));
    }
  }

  private void save(List<Seen> seen, List<Device> firsts) {
    if (seen.isEmpty() && firsts.isEmpty()) {
      state.clear();
      return;
    }
    Codec.Out out = new Codec.Out();
    out.intValue(seen.size());
    for (Seen s : seen) {
      out.longValue(s.micros());
      out.string(s.transactionId());
      out.string(s.country());
    }
    out.intValue(firsts.size());
    for (Device d : firsts) {
      out.longValue(d.day());
      out.string(d.device());
      out.longValue(d.firstMicros());
    }
    state.update(out.bytes());
  }
}

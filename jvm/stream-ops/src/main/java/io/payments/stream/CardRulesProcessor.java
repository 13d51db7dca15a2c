package io.payments.stream;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

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
 * The card rules' counts, keyed by card (the card token; a transaction without one counts under
 * "user:" + its user, as the batch job groups it), so a card shared by several users is one history.
 *
 * <p>For a row at event time t (microseconds), over the card's transactions in the state, itself
 * included: {@code velocity_count} = those in (t - velocity window, t], {@code card_count_1m} /
 * {@code card_count_5m} in (t - 60 s, t] / (t - 5 min, t], {@code small_count} = the small charges
 * (amount_reporting at or below the rules' small amount) in (t - card-testing window, t]: the
 * batch job's trailing range frames. {@code txn} rows join the history first (event-time order),
 * then every row is counted; {@code signal} rows (a late ML output of an earlier transaction) are
 * counted only. A card's entries older than (watermark - lookback - the longest window) are
 * dropped; the key expires by an event-time timer once all are.
 */
public final class CardRulesProcessor extends TimedProcessor {
  private static final long serialVersionUID = 1L;
  static final String[] OUTPUT_COLUMNS = {"velocity_count", "card_count_1m", "card_count_5m", "small_count"};

  private final long velocityMicros;
  private final long cardTestingMicros;
  private final BigDecimal smallAmount;
  private final long lookbackMs;
  private final long retentionMs;
  private final int kind;
  private final int eventTime;
  private final int transactionId;
  private final int amountReporting;
  private transient ValueState<byte[]> entries; // (t_us, transaction id, small) in time order (Codec)

  CardRulesProcessor(StructType schema, long velocityMs, long cardTestingMs, BigDecimal smallAmount, long lookbackMs) {
    this.velocityMicros = velocityMs * Rows.MICROS_PER_MS;
    this.cardTestingMicros = cardTestingMs * Rows.MICROS_PER_MS;
    this.smallAmount = smallAmount;
    this.lookbackMs = lookbackMs;
    this.retentionMs = Math.max(Math.max(velocityMs, cardTestingMs), 300_000L);
    this.kind = Rows.index(schema, "row_kind");
    this.eventTime = Rows.index(schema, "event_time");
    this.transactionId = Rows.index(schema, "transaction_id");
    this.amountReporting = Rows.index(schema, "amount_reporting");
  }

  @Override
  public void init(OutputMode outputMode, TimeMode timeMode) {
    entries = getHandle().getValueState("card_entries", Encoders.BINARY(), TTLConfig.NONE());
  }

  private record Entry(long micros, String transactionId, boolean small) {}

  private static final Comparator<Entry> ORDER = Comparator.comparingLong(Entry::micros).thenComparing(Entry::transactionId);

  @Override
  public scala.collection.Iterator<Row> handleInputRows(String key, scala.collection.Iterator<Row> inputRows, TimerValues timerValues) {
    List<Row> rows = Rows.drain(inputRows);
    List<Entry> history = load();
    boolean changed = false;
    for (Row row : rows) {
      if (TxnSignalsProcessor.TXN.equals(row.getString(kind))) {
        Entry entry = new Entry(Rows.micros(row.get(eventTime)), row.getString(transactionId), small(row));
        if (!history.contains(entry)) {
          history.add(entry);
          changed = true;
        }
      }
    }
    history.sort(ORDER);
    long watermarkMs = timerValues.getCurrentWatermarkInMs();
    if (watermarkMs > 0) {
      long floor = (watermarkMs - lookbackMs - retentionMs) * Rows.MICROS_PER_MS;
      changed |= history.removeIf(entry -> entry.micros() < floor);
    }
    List<Row> out = new ArrayList<>(rows.size());
    for (Row row : rows) {
      out.add(isRuled(row) ? counted(row, history) : passedThrough(row));
    }
    if (changed) {
      if (history.isEmpty()) {
        entries.clear();
      } else {
        Codec.Out state = new Codec.Out();
        state.intValue(history.size());
        for (Entry entry : history) {
          state.longValue(entry.micros());
          state.string(entry.transactionId());
          state.booleanValue(entry.small());
        }
        entries.update(state.bytes());
      }
    }
    if (!history.isEmpty()) {
      resetTimer(Math.floorDiv(history.get(history.size() - 1).micros(), Rows.MICROS_PER_MS) + lookbackMs + retentionMs);
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
    entries.clear();
    return Rows.iterator(List.of());
  }

  private boolean small(Row row) {
    Object amount = row.get(amountReporting);
    return amount != null && ((BigDecimal) amount).compareTo(smallAmount) <= 0;
  }

  private List<Entry> load() {
    List<Entry> history = new ArrayList<>();
    if (entries.exists()) {
      Codec.In state = new Codec.In(entries.get());
      int count = state.intValue();
      for (int i = 0; i < count; i++) {
        history.add(new Entry(state.longValue(), state.string(), state.booleanValue()));
      }
    }
    return history;
  }

  private Row counted(Row row, List<Entry> history) {
    long t = Rows.micros(row.get(eventTime));
    int velocity = 0;
    int minute = 0;
    int five = 0;
    int small = 0;
    for (Entry entry : history) {
      long age = t - entry.micros();
      if (age < 0) {
        break; // sorted by time: the rest is later than this event
      }
      velocity += age < velocityMicros ? 1 : 0;
      minute += age < 60_000_000L ? 1 : 0;
      five += age < 300_000_000L ? 1 : 0;
      small += entry.small() && age < cardTestingMicros ? 1 : 0;
    }
    Object[] values = Rows.values(row, OUTPUT_COLUMNS.length);
    int at = row.length();
    values[at] = velocity;
    values[at + 1] = minute;
    values[at + 2] = five;
    values[at + 3] = small;
    return RowFactory.create(values);
  }
}

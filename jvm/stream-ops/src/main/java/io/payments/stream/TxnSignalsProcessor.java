package io.payments.stream;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.ExpiredTimerInfo;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.streaming.TTLConfig;
import org.apache.spark.sql.streaming.TimeMode;
import org.apache.spark.sql.streaming.TimerValues;
import org.apache.spark.sql.streaming.ValueState;
import org.apache.spark.sql.types.StructType;

/**
 * One pass per transaction id: deduplication and the pairing of ML outputs with their transaction.
 *
 * <p>Input rows (one schema): {@code row_kind} {@code txn} (a valid, on-time, masked transaction) or
 * {@code signal} (a valid ML output: transaction_id, produced_at, fraud_score, model_version,
 * fraud_explanations, inference_time, the rest null). Output rows, same schema:
 *
 * <ul>
 *   <li>{@code txn}: the first arrival (produce time, partition, offset) of a transaction id not seen
 *       within the horizon, with the latest ML output produced within +- the signal window of it, if
 *       one arrived before or with it;
 *   <li>{@code duplicate}: every later arrival of that id while it is remembered;
 *   <li>{@code signal}: an ML output for a transaction emitted in an earlier micro-batch (within the
 *       window): the transaction's columns with this batch's latest such output, for an updated alert;
 *   <li>{@code signal_unmatched}: an ML output whose transaction did not arrive within the window
 *       (counted, never indexed).
 * </ul>
 *
 * Rows of any other kind (dead letters) pass through unchanged.
 *
 * "Latest" is the largest (inference_time, model_version, fraud_score), as the batch job picks it.
 * A transaction id is remembered until the watermark passes its produce time + {@code keepMs}; a
 * pending ML output until the watermark passes its produce time + the window. Both by event-time
 * timers, so expiry reads only expired keys, never the whole state.
 */
public final class TxnSignalsProcessor extends TimedProcessor {
  private static final long serialVersionUID = 1L;
  static final String TXN = "txn";
  static final String SIGNAL = "signal";
  static final String DUPLICATE = "duplicate";
  static final String UNMATCHED = "signal_unmatched";

  private final StructType schema;
  private final long windowMicros;
  private final long keepMs;
  private final int kind;
  private final int producedAt;
  private final int partition;
  private final int offset;
  private final int inferenceTime;
  private final int modelVersion;
  private final int fraudScore;
  private final int[] signalColumns;
  private transient ValueState<byte[]> txn; // the kept transaction row (Codec)
  private transient ValueState<byte[]> pending; // ML outputs waiting for their transaction (Codec)

  TxnSignalsProcessor(StructType schema, long windowMs, long keepMs, String[] signalColumns) {
    this.schema = schema;
    this.windowMicros = windowMs * Rows.MICROS_PER_MS;
    this.keepMs = keepMs;
    this.kind = Rows.index(schema, "row_kind");
    this.producedAt = Rows.index(schema, "produced_at");
    this.partition = Rows.index(schema, "kafka_partition");
    this.offset = Rows.index(schema, "kafka_offset");
    this.inferenceTime = Rows.index(schema, "inference_time");
    this.modelVersion = Rows.index(schema, "model_version");
    this.fraudScore = Rows.index(schema, "fraud_score");
    this.signalColumns = new int[signalColumns.length];
    for (int i = 0; i < signalColumns.length; i++) {
      this.signalColumns[i] = Rows.index(schema, signalColumns[i]);
    }
  }

  @Override
  public void init(OutputMode outputMode, TimeMode timeMode) {
    txn = getHandle().getValueState("txn", Encoders.BINARY(), TTLConfig.NONE());
    pending = getHandle().getValueState("pending_signals", Encoders.BINARY(), TTLConfig.NONE());
  }

  @Override
  public scala.collection.Iterator<Row> handleInputRows(String key, scala.collection.Iterator<Row> inputRows, TimerValues timerValues) {
    List<Row> txns = new ArrayList<>();
    List<Row> signals = new ArrayList<>();
    List<Row> out = new ArrayList<>();
    for (Row row : Rows.drain(inputRows)) {
      String rowKind = row.getString(kind);
      if (TXN.equals(rowKind)) {
        txns.add(row);
      } else if (SIGNAL.equals(rowKind)) {
        signals.add(row);
      } else {
        out.add(row); // dead letters pass through
      }
    }
    Comparator<Row> arrival = Rows.arrival(producedAt, partition, offset);
    txns.sort(arrival);
    signals.sort(arrival);
    Row seen = txn.exists() ? new Codec.In(txn.get()).row() : null;
    Row kept = null;
    for (Row row : txns) {
      if (seen == null && kept == null) {
        kept = row;
      } else {
        out.add(Rows.withValue(row, kind, DUPLICATE));
      }
    }
    if (kept != null) {
      List<Row> candidates = new ArrayList<>();
      candidates.addAll(pendingSignals());
      pending.clear();
      candidates.addAll(signals);
      Row best = latestWithinWindow(candidates, kept, out);
      out.add(withSignal(kept, best, TXN, kept.get(producedAt)));
      Codec.Out state = new Codec.Out();
      state.row(kept);
      txn.update(state.bytes());
      resetTimer(Math.floorDiv(Rows.micros(kept.get(producedAt)), Rows.MICROS_PER_MS) + keepMs);
    } else if (seen != null) {
      Row best = latestWithinWindow(signals, seen, out);
      if (best != null) {
        out.add(withSignal(seen, best, SIGNAL, best.get(producedAt)));
      }
    } else if (!signals.isEmpty()) {
      List<Row> waiting = pendingSignals();
      waiting.addAll(signals);
      Codec.Out state = new Codec.Out();
      state.intValue(waiting.size());
      for (Row signal : waiting) {
        state.row(signal);
      }
      pending.update(state.bytes());
      long newest = Rows.micros(signals.get(signals.size() - 1).get(producedAt));
      resetTimer(Math.max(currentTimer(), Math.floorDiv(newest + windowMicros, Rows.MICROS_PER_MS)));
    }
    return Rows.iterator(out);
  }

  @Override
  public scala.collection.Iterator<Row> handleExpiredTimer(String key, TimerValues timerValues, ExpiredTimerInfo expiredTimerInfo) {
    List<Row> out = new ArrayList<>();
    if (!txn.exists()) {
      // Never matched. Emitted at the watermark's time: rows older than it may not leave the operator.
      long now = timerValues.getCurrentWatermarkInMs() * Rows.MICROS_PER_MS;
      for (Row signal : pendingSignals()) {
        Row unmatched = Rows.withValue(signal, kind, UNMATCHED);
        out.add(Rows.withValue(unmatched, producedAt, Rows.timestampLike(signal.get(producedAt), now)));
      }
    }
    txn.clear();
    pending.clear();
    return Rows.iterator(out);
  }

  private List<Row> pendingSignals() {
    List<Row> waiting = new ArrayList<>();
    if (pending.exists()) {
      Codec.In state = new Codec.In(pending.get());
      int count = state.intValue();
      for (int i = 0; i < count; i++) {
        waiting.add(state.row());
      }
    }
    return waiting;
  }

  /** The latest candidate produced within +- the window of {@code transaction}; the others become
   * {@code signal_unmatched} rows in {@code out}, at the later produce time of the two. One of them
   * is a row of this micro-batch (a new transaction, or a signal for a remembered one), so the row
   * is never older than the watermark: the other may have waited in state while the watermark
   * passed it, and Spark fails the query on a row older than the watermark leaving the operator. */
  private Row latestWithinWindow(List<Row> candidates, Row transaction, List<Row> out) {
    long produced = Rows.micros(transaction.get(producedAt));
    Row best = null;
    for (Row candidate : candidates) {
      long candidateProduced = Rows.micros(candidate.get(producedAt));
      if (Math.abs(candidateProduced - produced) <= windowMicros) {
        if (best == null || later(candidate, best)) {
          best = candidate;
        }
      } else {
        Row unmatched = Rows.withValue(candidate, kind, UNMATCHED);
        Object at = candidateProduced >= produced ? candidate.get(producedAt) : transaction.get(producedAt);
        out.add(Rows.withValue(unmatched, producedAt, at));
      }
    }
    return best;
  }

  /** (inference_time, model_version, fraud_score) of {@code a} above that of {@code b}. */
  private boolean later(Row a, Row b) {
    int byTime = Long.compare(Rows.micros(a.get(inferenceTime)), Rows.micros(b.get(inferenceTime)));
    if (byTime != 0) {
      return byTime > 0;
    }
    int byModel = a.getString(modelVersion).compareTo(b.getString(modelVersion));
    if (byModel != 0) {
      return byModel > 0;
    }
    return ((BigDecimal) a.get(fraudScore)).compareTo((BigDecimal) b.get(fraudScore)) > 0;
  }

  private Row withSignal(Row transaction, Row signal, String rowKind, Object produced) {
    Object[] values = Rows.values(transaction, 0);
    for (int column : signalColumns) {
      values[column] = signal == null ? null : signal.get(column);
    }
    values[kind] = rowKind;
    values[producedAt] = produced;
    return org.apache.spark.sql.RowFactory.create(values);
  }
}

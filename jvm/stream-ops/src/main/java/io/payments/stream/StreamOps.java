package io.payments.stream;

import java.math.BigDecimal;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The entry points PySpark calls (spark_apps.streaming.operators): each groups a streaming
 * DataFrame by one key and applies one {@link TimedProcessor} with Spark's transformWithState in
 * event-time mode, re-assigning {@code produced_at} as the output's event time so the watermark
 * flows on to the next stateful operator.
 */
public final class StreamOps {
  static final String EVENT_TIME = "produced_at";
  static final String KEY = "_state_key";

  private StreamOps() {}

  /** Dedup + ML-signal pairing per transaction id ({@link TxnSignalsProcessor}); same schema out. */
  public static Dataset<Row> pairSignals(Dataset<Row> rows, long signalWindowMs, long keepMs, String[] signalColumns) {
    Dataset<Row> keyed = keyed(rows, "transaction_id");
    StructType schema = keyed.schema();
    return apply(keyed, new TxnSignalsProcessor(schema, signalWindowMs, keepMs, signalColumns), schema);
  }

  /** Card counts per card key ({@link CardRulesProcessor}); the schema plus {@code OUTPUT_COLUMNS}. */
  public static Dataset<Row> withCardCounts(
      Dataset<Row> rows, String keyColumn, long velocityMs, long cardTestingMs, String smallAmount, long lookbackMs) {
    Dataset<Row> keyed = keyed(rows, keyColumn);
    StructType schema = keyed.schema();
    StructType out = schema;
    for (String column : CardRulesProcessor.OUTPUT_COLUMNS) {
      out = out.add(column, DataTypes.IntegerType, true);
    }
    CardRulesProcessor processor = new CardRulesProcessor(schema, velocityMs, cardTestingMs, new BigDecimal(smallAmount), lookbackMs);
    return apply(keyed, processor, out);
  }

  /** User values per user ({@link UserRulesProcessor}); the schema plus {@code OUTPUT_COLUMNS}. */
  public static Dataset<Row> withUserValues(Dataset<Row> rows, long geoJumpMs, long lookbackMs) {
    Dataset<Row> keyed = keyed(rows, "user_id");
    StructType schema = keyed.schema();
    StructType out = schema.add("prev_country_minutes", DataTypes.DoubleType, true).add("distinct_devices", DataTypes.IntegerType, true);
    return apply(keyed, new UserRulesProcessor(schema, geoJumpMs, lookbackMs), out);
  }

  /** The rows with the grouping key as {@link #KEY}: rows without one (dead letters of unparseable
   * records) share the empty key, and pass through. */
  private static Dataset<Row> keyed(Dataset<Row> rows, String keyColumn) {
    return rows.withColumn(KEY, functions.coalesce(functions.col(keyColumn), functions.lit("")));
  }

  /** Grouped by the key column itself (groupBy(...).as, not groupByKey with a function): Spark then
   * adds no AppendColumns step that turns every row into an object and back to compute the key. */
  private static Dataset<Row> apply(Dataset<Row> keyed, TimedProcessor processor, StructType out) {
    Encoder<Row> encoder = Encoders.row(out);
    return keyed
        .groupBy(KEY)
        .as(Encoders.STRING(), Encoders.row(keyed.schema()))
        .transformWithState(processor, EVENT_TIME, OutputMode.Append(), encoder, encoder)
        .drop(KEY);
  }
}

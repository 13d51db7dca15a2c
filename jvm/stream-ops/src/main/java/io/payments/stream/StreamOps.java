package io.payments.stream;

import java.math.BigDecimal;

import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
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

  private StreamOps() {}

  /** Dedup + ML-signal pairing per transaction id ({@link TxnSignalsProcessor}); same schema out. */
  public static Dataset<Row> pairSignals(Dataset<Row> rows, long signalWindowMs, long keepMs, String[] signalColumns) {
    StructType schema = rows.schema();
    return apply(rows, "transaction_id", new TxnSignalsProcessor(schema, signalWindowMs, keepMs, signalColumns), schema);
  }

  /** Card counts per card key ({@link CardRulesProcessor}); the schema plus {@code OUTPUT_COLUMNS}. */
  public static Dataset<Row> withCardCounts(
      Dataset<Row> rows, String keyColumn, long velocityMs, long cardTestingMs, String smallAmount, long lookbackMs) {
    StructType schema = rows.schema();
    StructType out = schema;
    for (String column : CardRulesProcessor.OUTPUT_COLUMNS) {
      out = out.add(column, DataTypes.IntegerType, true);
    }
    CardRulesProcessor processor = new CardRulesProcessor(schema, velocityMs, cardTestingMs, new BigDecimal(smallAmount), lookbackMs);
    return apply(rows, keyColumn, processor, out);
  }

  /** User values per user ({@link UserRulesProcessor}); the schema plus {@code OUTPUT_COLUMNS}. */
  public static Dataset<Row> withUserValues(Dataset<Row> rows, long geoJumpMs, long lookbackMs) {
    StructType schema = rows.schema();
    StructType out = schema.add("prev_country_minutes", DataTypes.DoubleType, true).add("distinct_devices", DataTypes.IntegerType, true);
    return apply(rows, "user_id", new UserRulesProcessor(schema, geoJumpMs, lookbackMs), out);
  }

  private static Dataset<Row> apply(Dataset<Row> rows, String keyColumn, TimedProcessor processor, StructType out) {
    int key = Rows.index(rows.schema(), keyColumn);
    Encoder<Row> encoder = Encoders.row(out);
    return rows
        // Rows without a key (dead letters of unparseable records) share the empty key: they pass through.
        .groupByKey((MapFunction<Row, String>) row -> row.isNullAt(key) ? "" : row.getString(key), Encoders.STRING())
        .transformWithState(processor, EVENT_TIME, OutputMode.Append(), encoder, encoder);
  }
}

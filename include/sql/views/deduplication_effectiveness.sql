-- Deduplication effectiveness (data quality): per day, stream events against distinct
-- transactions, transactions new in the aggregate index and which inputs saw them, and
-- quarantined records. Sources: stream_index, aggregate_index, quarantine.
CREATE OR REPLACE VIEW payments.deduplication_effectiveness AS
WITH stream AS (
  SELECT dt, COUNT(*) AS stream_events, COUNT(DISTINCT transaction_id) AS stream_transactions
  FROM payments.stream_index
  GROUP BY dt
),
merged AS (
  SELECT
    dt,
    COUNT(*) AS new_transactions,
    SUM(CASE WHEN record_source = 'STREAM_AND_BATCH' THEN 1 ELSE 0 END) AS seen_by_both,
    SUM(CASE WHEN record_source = 'STREAM' THEN 1 ELSE 0 END) AS stream_only,
    SUM(CASE WHEN record_source = 'BATCH' THEN 1 ELSE 0 END) AS batch_only
  FROM payments.aggregate_index
  WHERE first_seen_date = CAST(dt AS DATE)
  GROUP BY dt
),
rejected AS (
  SELECT dt, COUNT(*) AS quarantined
  FROM payments.quarantine
  GROUP BY dt
)
SELECT
  merged.dt,
  merged.new_transactions,
  merged.seen_by_both,
  merged.stream_only,
  merged.batch_only,
  COALESCE(stream.stream_events, 0) AS stream_events,
  COALESCE(stream.stream_transactions, 0) AS stream_transactions,
  COALESCE(stream.stream_events, 0) - COALESCE(stream.stream_transactions, 0) AS stream_duplicates_removed,
  CASE
    WHEN stream.stream_events > 0
      THEN CAST(CAST(stream.stream_events - stream.stream_transactions AS DECIMAL(20, 6)) / stream.stream_events AS DECIMAL(7, 6))
  END AS stream_duplicate_ratio,
  COALESCE(rejected.quarantined, 0) AS quarantined
FROM merged
LEFT JOIN stream ON stream.dt = merged.dt
LEFT JOIN rejected ON rejected.dt = merged.dt

-- Merchant leaderboard (partnerships): per merchant over the 30 business days up to the
-- newest one, volume, approval and chargeback ratios, anomaly days and the volume rank.
-- Source: merchant_performance_index.
CREATE OR REPLACE VIEW payments.merchant_leaderboard AS
WITH recent AS (
  SELECT *
  FROM payments.merchant_performance_index
  WHERE business_date > (SELECT MAX(business_date) FROM payments.merchant_performance_index) - INTERVAL '30' DAY
),
totals AS (
  SELECT
    merchant_id,
    MAX(merchant_name) AS merchant_name,
    COUNT(*) AS active_days,
    SUM(transaction_count) AS transactions,
    SUM(approved_count) AS approved,
    SUM(gross_volume) AS gross_volume,
    SUM(refund_amount) AS refund_amount,
    SUM(chargeback_count) AS chargebacks,
    SUM(CASE WHEN is_anomaly THEN 1 ELSE 0 END) AS anomaly_days
  FROM recent
  GROUP BY merchant_id
)
SELECT
  merchant_id,
  merchant_name,
  active_days,
  transactions,
  gross_volume,
  refund_amount,
  CASE WHEN transactions > 0 THEN CAST(CAST(approved AS DECIMAL(20, 6)) / transactions AS DECIMAL(7, 6)) END AS approval_rate,
  CASE WHEN approved > 0 THEN CAST(CAST(chargebacks AS DECIMAL(20, 6)) / approved AS DECIMAL(7, 6)) END AS chargeback_ratio,
  anomaly_days,
  RANK() OVER (ORDER BY gross_volume DESC) AS volume_rank
FROM totals

-- Reconciliation breaks by type and age (finance): every non-MATCHED row per statement
-- day, by match status and age bucket (days from the transaction, or from the statement
-- line when there is no transaction, to the statement day). Source: reconciliation_index.
CREATE OR REPLACE VIEW payments.reconciliation_breaks AS
WITH breaks AS (
  SELECT
    dt,
    match_status,
    date_diff('day', CAST(COALESCE(event_time, settled_at) AS DATE), CAST(dt AS DATE)) AS age_days,
    amount_difference,
    statement_amount,
    internal_amount
  FROM payments.reconciliation_index
  WHERE match_status <> 'MATCHED'
)
SELECT
  dt,
  match_status,
  CASE
    WHEN age_days <= 1 THEN '0-1d'
    WHEN age_days <= 3 THEN '2-3d'
    WHEN age_days <= 7 THEN '4-7d'
    ELSE '8d+'
  END AS age_bucket,
  COUNT(*) AS breaks,
  SUM(ABS(amount_difference)) AS absolute_difference,
  SUM(statement_amount) AS statement_amount,
  SUM(internal_amount) AS internal_amount
FROM breaks
GROUP BY
  dt,
  match_status,
  CASE
    WHEN age_days <= 1 THEN '0-1d'
    WHEN age_days <= 3 THEN '2-3d'
    WHEN age_days <= 7 THEN '4-7d'
    ELSE '8d+'
  END

-- Settlement forecast (treasury): upcoming payouts per merchant, payout date and currency,
-- summed over every statement day that feeds them. Source: settlement_schedule_index.
CREATE OR REPLACE VIEW payments.settlement_forecast AS
SELECT
  merchant_id,
  MAX(merchant_name) AS merchant_name,
  expected_payout_date,
  currency,
  SUM(line_count) AS lines,
  SUM(gross_amount) AS gross_amount,
  SUM(refund_amount) AS refund_amount,
  SUM(chargeback_amount) AS chargeback_amount,
  SUM(fee_amount) AS fee_amount,
  SUM(net_amount) AS net_amount,
  MAX(CASE WHEN payout_status = 'ON_HOLD' THEN 1 ELSE 0 END) = 1 AS has_hold,
  COUNT(DISTINCT statement_date) AS statement_days
FROM payments.settlement_schedule_index
WHERE expected_payout_date >= current_date
GROUP BY merchant_id, expected_payout_date, currency

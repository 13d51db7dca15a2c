-- Active high-risk accounts (fraud ops, live alerts): users with a flagged transaction in
-- the 7 days up to the newest flagged transaction, at least two flags or a risk score of
-- 80 or more. Source: fraud_index.
CREATE OR REPLACE VIEW payments.active_high_risk_accounts AS
WITH recent AS (
  SELECT *
  FROM payments.fraud_index
  WHERE event_time >= (SELECT MAX(event_time) FROM payments.fraud_index) - INTERVAL '7' DAY
)
SELECT
  user_id,
  COUNT(*) AS flagged_transactions,
  COUNT(DISTINCT card_token) AS cards,
  COUNT(DISTINCT merchant_id) AS merchants,
  MAX(risk_score) AS max_risk_score,
  MAX(fraud_score) AS max_fraud_score,
  SUM(amount_reporting) AS flagged_amount_reporting,
  SUM(CASE WHEN recommended_action = 'BLOCK_CARD' THEN 1 ELSE 0 END) AS block_card_actions,
  MIN(event_time) AS first_flagged_at,
  MAX(event_time) AS last_flagged_at
FROM recent
GROUP BY user_id
HAVING COUNT(*) >= 2 OR MAX(risk_score) >= 80

-- Velocity fraud analysis (fraud ops): transactions flagged VELOCITY or CARD_TESTING per
-- day and hour: how many, on how many cards and users, for how much. Source: fraud_index.
CREATE OR REPLACE VIEW payments.velocity_fraud_analysis AS
SELECT
  dt,
  date_trunc('hour', event_time) AS event_hour,
  COUNT(*) AS velocity_transactions,
  SUM(CASE WHEN contains(rule_flags, 'CARD_TESTING') THEN 1 ELSE 0 END) AS card_testing_transactions,
  COUNT(DISTINCT card_token) AS cards,
  COUNT(DISTINCT user_id) AS users,
  SUM(amount_reporting) AS amount_reporting,
  SUM(CASE WHEN recommended_action = 'BLOCK_CARD' THEN 1 ELSE 0 END) AS blocked
FROM payments.fraud_index
WHERE contains(rule_flags, 'VELOCITY') OR contains(rule_flags, 'CARD_TESTING')
GROUP BY dt, date_trunc('hour', event_time)

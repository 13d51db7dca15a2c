-- Daily fraud summary (fraud ops): flagged transactions per day, by recommended action,
-- with their reporting-currency value and score levels. Source: fraud_index.
CREATE OR REPLACE VIEW payments.daily_fraud_summary AS
SELECT
  dt,
  COUNT(*) AS flagged_transactions,
  COUNT(DISTINCT user_id) AS flagged_users,
  COUNT(DISTINCT card_token) AS flagged_cards,
  SUM(CASE WHEN recommended_action = 'BLOCK_CARD' THEN 1 ELSE 0 END) AS block_card,
  SUM(CASE WHEN recommended_action = 'REQUIRE_3DS' THEN 1 ELSE 0 END) AS require_3ds,
  SUM(CASE WHEN recommended_action = 'MANUAL_REVIEW' THEN 1 ELSE 0 END) AS manual_review,
  SUM(CASE WHEN cardinality(rule_flags) > 0 THEN 1 ELSE 0 END) AS with_rule_flags,
  SUM(amount_reporting) AS flagged_amount_reporting,
  CAST(AVG(risk_score) AS DECIMAL(5, 2)) AS average_risk_score,
  MAX(fraud_score) AS max_fraud_score
FROM payments.fraud_index
GROUP BY dt

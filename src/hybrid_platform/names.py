"""Names both engines must agree on: Kafka topics, Iceberg namespaces and tables, consumer groups."""

from __future__ import annotations

# Kafka topics (JSON, UTF-8). Record key of `transactions` is the card_id.
TOPIC_TRANSACTIONS = "transactions"
TOPIC_FRAUD_LABELS = "fraud_labels"
TOPIC_FRAUD_ALERTS = "fraud_alerts"  # exactly once (transactional): the audited alerts
TOPIC_FRAUD_DECISIONS = "fraud_decisions"  # at least once, at arrival: every decision; dedupe on txn_id
TOPIC_TRANSACTIONS_DLQ = "transactions_dlq"
ALL_TOPICS = (TOPIC_TRANSACTIONS, TOPIC_FRAUD_LABELS, TOPIC_FRAUD_ALERTS, TOPIC_FRAUD_DECISIONS, TOPIC_TRANSACTIONS_DLQ)
#: Topics the scoring job writes: the broker stamps their records (LogAppendTime), so a latency measured on
#: them does not depend on when a reader happened to fetch them.
OUTPUT_TOPICS = (TOPIC_FRAUD_ALERTS, TOPIC_FRAUD_DECISIONS)
#: `hdp demo`'s first check: a round trip through Kafka.
TOPIC_SMOKE = "platform_smoke"
#: The Spark Structured Streaming scorer's outputs (decisions, alerts, dead letters): the benchmark's comparison.
SPARK_SCORING_TOPICS = ("fraud_decisions_spark", "fraud_alerts_spark", "transactions_dlq_spark")

# Iceberg: what the streaming path lands, exactly once, for the batch path to read.
RAW_NAMESPACE = "raw"
RAW_TRANSACTIONS = f"{RAW_NAMESPACE}.transactions"
RAW_FRAUD_LABELS = f"{RAW_NAMESPACE}.fraud_labels"
RAW_FRAUD_ALERTS = f"{RAW_NAMESPACE}.fraud_alerts"
RAW_FRAUD_DECISIONS = f"{RAW_NAMESPACE}.fraud_decisions"
RAW_TRANSACTIONS_DLQ = f"{RAW_NAMESPACE}.transactions_dlq"

# Flink jobs (also their Kafka consumer group ids and transactional-id prefixes).
JOB_FRAUD_SCORING = "fraud_scoring"
JOB_LAKE_INGEST = "lake_ingest"

# Batch layers Spark builds from raw.* (daily_etl), published through write-audit-publish.
SILVER_TRANSACTIONS = "silver.transactions"
GOLD_MERCHANT_DAILY = "gold.merchant_daily"
GOLD_CARD_DAILY = "gold.card_daily"
GOLD_FRAUD_KPIS_DAILY = "gold.fraud_kpis_daily"
GOLD_TABLES = (GOLD_MERCHANT_DAILY, GOLD_CARD_DAILY, GOLD_FRAUD_KPIS_DAILY)
# Reference data: the currency rates dimension that normalises amounts to the reporting currency.
REF_CURRENCY_RATES = "ref.currency_rates"
REPORTING_CURRENCY = "USD"
# Rows the batch path refused (row-level validation or a failed gate), kept with the reason: nothing is lost.
QUARANTINE_TRANSACTIONS = "quarantine.transactions"
# dbt builds its staging views and marts in these namespaces of the same catalog.
DBT_STAGING_NAMESPACE = "staging"
DBT_MARTS_NAMESPACE = "marts"

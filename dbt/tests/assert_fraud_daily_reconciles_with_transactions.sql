-- gold.fraud_kpis_daily (built by Spark's daily_etl) and the dbt marts built from silver must tell the same
-- story: per day, the same transactions, the same labeled fraud and the same alerted transactions.
with from_transactions as (
    select
        event_date,
        count(*) as txn_count,
        count_if(is_fraud) as fraud_count,
        count_if(is_alerted) as alert_count,
        count_if(alert_outcome = 'true_positive') as alerted_fraud_count
    from {{ ref('fct_transactions') }}
    group by event_date
)

select
    daily.event_date,
    daily.txn_count,
    txns.txn_count as fct_txn_count,
    daily.fraud_count,
    txns.fraud_count as fct_fraud_count,
    daily.alert_count,
    txns.alert_count as fct_alert_count,
    daily.alerted_fraud_count,
    txns.alerted_fraud_count as fct_alerted_fraud_count
from {{ ref('mart_fraud_daily') }} as daily
full outer join from_transactions as txns on daily.event_date = txns.event_date
where
    daily.event_date is null
    or txns.event_date is null
    or daily.txn_count != txns.txn_count
    or daily.fraud_count != txns.fraud_count
    or daily.alert_count != txns.alert_count
    or daily.alerted_fraud_count != txns.alerted_fraud_count

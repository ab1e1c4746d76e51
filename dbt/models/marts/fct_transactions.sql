-- Every silver transaction with what the stream said about it and what the label says now.
{{ config(partition_by=['event_date']) }}

with transactions as (
    select * from {{ ref('stg_transactions') }}
),

alerts as (
    select * from {{ ref('stg_fraud_alerts') }}
),

joined as (
    select
        transactions.txn_id,
        transactions.event_date,
        transactions.event_ts,
        transactions.card_id,
        transactions.merchant_id,
        transactions.mcc,
        transactions.channel,
        transactions.country,
        transactions.amount,
        transactions.currency,
        transactions.amount_usd,
        transactions.is_fraud,
        transactions.label_status,
        transactions.labeled_ts,
        alerts.txn_id is not null as is_alerted,
        alerts.score as alert_score,
        alerts.model_version as alert_model_version,
        alerts.scored_ts as alert_scored_ts
    from transactions
    left join alerts on transactions.txn_id = alerts.txn_id
)

select
    *,
    case
        when is_fraud is null then 'unlabeled'
        when is_alerted and is_fraud then 'true_positive'
        when is_alerted then 'false_positive'
        when is_fraud then 'false_negative'
        else 'true_negative'
    end as alert_outcome
from joined

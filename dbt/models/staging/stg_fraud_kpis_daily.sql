with source as (
    select * from {{ source('gold', 'fraud_kpis_daily') }}
),

renamed as (
    select
        event_date,
        txn_count,
        amount_usd_sum,
        labeled_count,
        fraud_count,
        fraud_amount_usd,
        fraud_rate,
        alert_count,
        alerted_fraud_count,
        alert_precision,
        fraud_recall
    from source
)

select * from renamed

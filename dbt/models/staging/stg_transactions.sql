-- Silver transactions as the marts use them: one row per txn_id, the label spelled out.
with source as (
    select * from {{ source('silver', 'transactions') }}
),

renamed as (
    select
        txn_id,
        card_id,
        merchant_id,
        mcc,
        channel,
        country,
        amount,
        currency,
        amount_usd,
        event_time as event_time_ms,
        event_ts,
        event_date,
        is_fraud,
        case
            when is_fraud then 'fraud'
            when not is_fraud then 'legit'
            else 'unlabeled'
        end as label_status,
        timestamp_millis(labeled_at) as labeled_ts
    from source
)

select * from renamed

with source as (
    select * from {{ source('gold', 'merchant_daily') }}
),

renamed as (
    select
        event_date,
        merchant_id,
        mcc,
        txn_count,
        amount_usd_sum,
        distinct_cards,
        labeled_count,
        fraud_count,
        fraud_amount_usd
    from source
)

select * from renamed

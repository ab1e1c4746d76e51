with source as (
    select * from {{ source('gold', 'card_daily') }}
),

renamed as (
    select
        event_date,
        card_id,
        txn_count,
        amount_usd_sum,
        max_amount_usd,
        distinct_merchants,
        distinct_countries,
        fraud_count
    from source
)

select * from renamed

-- One row per merchant over every published day (from gold.merchant_daily).
with merchant_days as (
    select * from {{ ref('stg_merchant_daily') }}
),

latest_category as (
    select merchant_id, mcc
    from (
        select
            merchant_id,
            mcc,
            row_number() over (partition by merchant_id order by event_date desc) as recency
        from merchant_days
    )
    where recency = 1
),

totals as (
    select
        merchant_id,
        min(event_date) as first_seen_date,
        max(event_date) as last_seen_date,
        count(*) as active_days,
        sum(txn_count) as txn_count,
        sum(amount_usd_sum) as amount_usd_sum,
        sum(labeled_count) as labeled_count,
        sum(fraud_count) as fraud_count,
        sum(fraud_amount_usd) as fraud_amount_usd
    from merchant_days
    group by merchant_id
)

select
    totals.merchant_id,
    latest_category.mcc,
    totals.first_seen_date,
    totals.last_seen_date,
    totals.active_days,
    totals.txn_count,
    totals.amount_usd_sum,
    totals.labeled_count,
    totals.fraud_count,
    totals.fraud_amount_usd,
    cast(totals.fraud_count as double) / totals.txn_count as fraud_rate
from totals
inner join latest_category on totals.merchant_id = latest_category.merchant_id

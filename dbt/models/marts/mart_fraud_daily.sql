-- The day's fraud picture: gold's KPIs (how the stream's alerts did against the labels known now) with the
-- split by channel and how many merchants and cards were hit.
with kpis as (
    select * from {{ ref('stg_fraud_kpis_daily') }}
),

by_channel as (
    select
        event_date,
        count_if(channel = 'pos') as pos_txn_count,
        count_if(channel = 'pos' and is_fraud) as pos_fraud_count,
        count_if(channel = 'online') as online_txn_count,
        count_if(channel = 'online' and is_fraud) as online_fraud_count,
        count_if(channel = 'atm') as atm_txn_count,
        count_if(channel = 'atm' and is_fraud) as atm_fraud_count
    from {{ ref('fct_transactions') }}
    group by event_date
),

merchants as (
    select
        event_date,
        count(*) as active_merchants,
        count_if(fraud_count > 0) as merchants_with_fraud
    from {{ ref('stg_merchant_daily') }}
    group by event_date
),

cards as (
    select
        event_date,
        count(*) as active_cards,
        count_if(fraud_count > 0) as cards_with_fraud
    from {{ ref('stg_card_daily') }}
    group by event_date
)

select
    kpis.event_date,
    kpis.txn_count,
    kpis.amount_usd_sum,
    kpis.labeled_count,
    kpis.fraud_count,
    kpis.fraud_rate,
    kpis.fraud_amount_usd,
    case
        when kpis.amount_usd_sum > 0 then cast(kpis.fraud_amount_usd as double) / cast(kpis.amount_usd_sum as double)
    end as fraud_amount_share,
    kpis.alert_count,
    kpis.alerted_fraud_count,
    kpis.alert_precision,
    kpis.fraud_recall,
    coalesce(by_channel.pos_txn_count, 0) as pos_txn_count,
    coalesce(by_channel.pos_fraud_count, 0) as pos_fraud_count,
    coalesce(by_channel.online_txn_count, 0) as online_txn_count,
    coalesce(by_channel.online_fraud_count, 0) as online_fraud_count,
    coalesce(by_channel.atm_txn_count, 0) as atm_txn_count,
    coalesce(by_channel.atm_fraud_count, 0) as atm_fraud_count,
    coalesce(merchants.active_merchants, 0) as active_merchants,
    coalesce(merchants.merchants_with_fraud, 0) as merchants_with_fraud,
    coalesce(cards.active_cards, 0) as active_cards,
    coalesce(cards.cards_with_fraud, 0) as cards_with_fraud
from kpis
left join by_channel on kpis.event_date = by_channel.event_date
left join merchants on kpis.event_date = merchants.event_date
left join cards on kpis.event_date = cards.event_date

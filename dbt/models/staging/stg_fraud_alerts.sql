-- The stream's alerts, one per transaction: a replayed transaction is scored (and alerted) again, the first
-- alert is the one that fired.
with source as (
    select * from {{ source('raw', 'fraud_alerts') }}
    where txn_id is not null
),

ranked as (
    select
        *,
        row_number() over (partition by txn_id order by scored_at, model_version) as alert_copy
    from source
),

renamed as (
    select
        txn_id,
        card_id,
        score,
        model_version,
        reasons,
        size(reasons) as reason_count,
        event_time as event_time_ms,
        timestamp_millis(event_time) as event_ts,
        event_date,
        timestamp_millis(scored_at) as scored_ts,
        scored_at - event_time as event_to_score_ms
    from ranked
    where alert_copy = 1
)

select * from renamed

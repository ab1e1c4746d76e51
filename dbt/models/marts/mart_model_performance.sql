-- How each model version's alerts did, per day, against the labels in silver.
--
-- Precision needs only the alerts: true positives / alerts whose transaction is labeled (an unlabeled alert
-- is not yet right or wrong). Recall also needs the frauds the model *missed*, and a miss carries no model
-- version: it can be attributed only when a single version raised every alert of the day. When the champion
-- was hot-swapped during the day, recall is NULL for every version of that day (mart_fraud_daily has the
-- day's recall over all versions).
with alerts as (
    select * from {{ ref('stg_fraud_alerts') }}
),

transactions as (
    select * from {{ ref('stg_transactions') }}
),

alert_outcomes as (
    select
        alerts.event_date,
        alerts.model_version,
        alerts.score,
        transactions.is_fraud
    from alerts
    left join transactions on alerts.txn_id = transactions.txn_id
),

per_version as (
    select
        event_date,
        model_version,
        count(*) as alert_count,
        count(is_fraud) as labeled_alert_count,
        count_if(is_fraud) as true_positive_count,
        count_if(not is_fraud) as false_positive_count,
        avg(score) as avg_score
    from alert_outcomes
    group by event_date, model_version
),

versions_per_day as (
    select
        event_date,
        count(distinct model_version) as model_versions_that_day
    from alerts
    group by event_date
),

frauds_per_day as (
    select
        event_date,
        count_if(is_fraud) as fraud_count
    from transactions
    group by event_date
)

select
    per_version.event_date,
    per_version.model_version,
    per_version.alert_count,
    per_version.labeled_alert_count,
    per_version.true_positive_count,
    per_version.false_positive_count,
    per_version.avg_score,
    case
        when per_version.labeled_alert_count > 0
            then cast(per_version.true_positive_count as double) / per_version.labeled_alert_count
    end as alert_precision,
    versions_per_day.model_versions_that_day,
    coalesce(frauds_per_day.fraud_count, 0) as day_fraud_count,
    case
        when versions_per_day.model_versions_that_day = 1 and frauds_per_day.fraud_count > 0
            then cast(per_version.true_positive_count as double) / frauds_per_day.fraud_count
    end as fraud_recall
from per_version
inner join versions_per_day on per_version.event_date = versions_per_day.event_date
left join frauds_per_day on per_version.event_date = frauds_per_day.event_date

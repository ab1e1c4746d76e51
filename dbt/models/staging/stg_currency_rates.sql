with source as (
    select * from {{ source('ref', 'currency_rates') }}
),

renamed as (
    select
        rate_date,
        currency,
        usd_per_unit
    from source
)

select * from renamed

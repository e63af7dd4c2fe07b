-- One rate per currency and day: EUR (or the reporting currency) per unit of the currency.
-- A rate delivered again in a later extract replaces the earlier one.
with versions as (
    select
        cast({{ json_text('record', ['date']) }} as date) as rate_date,
        upper({{ json_text('record', ['currency']) }}) as currency,
        cast({{ json_text('record', ['rate_to_reporting']) }} as decimal(18, 8)) as rate_to_reporting,
        row_number() over (
            partition by {{ json_text('record', ['date']) }}, upper({{ json_text('record', ['currency']) }})
            order by _extract_date desc, _source_file desc, _record_number desc
        ) as version_rank
    from {{ source('spend', 'fx_rates') }}
)

select
    rate_date,
    currency,
    rate_to_reporting
from versions
where version_rank = 1

-- One rate per currency and day: EUR (or the reporting currency) per unit of the currency.
-- A rate delivered again in a later extract replaces the earlier one.
with versions as (
    select
        cast({{ json_text('record', ['date']) }} as date) as rate_date,
        upper({{ json_text('record', ['currency']) }}) as currency,
        cast({{ json_text('record', ['rate_to_reporting']) }} as decimal(18, 8)) as rate_to_reporting,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('spend', 'fx_rates') }}
),

ranked as (
    {{ rank_versions('versions', 'rate_date, currency') }}
)

select
    rate_date,
    currency,
    rate_to_reporting
from ranked
where version_rank = 1

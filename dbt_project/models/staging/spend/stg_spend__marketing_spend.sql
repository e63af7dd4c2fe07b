-- Advertising spend, one row per day, channel and campaign. Ad platforms restate the
-- previous day in the next extract: the latest extract wins (then the later file and line).
with versions as (
    select
        cast({{ json_text('record', ['date']) }} as date) as spend_date,
        {{ json_text('record', ['channel']) }} as channel,
        {{ json_text('record', ['campaign']) }} as campaign,
        cast({{ json_text('record', ['spend']) }} as decimal(18, 2)) as spend,
        upper(trim({{ json_text('record', ['currency']) }})) as currency,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('spend', 'marketing_spend') }}
),

ranked as (
    {{ rank_versions('versions', 'spend_date, channel, campaign') }}
)

select
    spend_date,
    channel,
    campaign,
    spend,
    currency,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1

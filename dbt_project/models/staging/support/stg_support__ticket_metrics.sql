-- Current Zendesk ticket metrics per ticket (latest version by updated_at). Minutes are the
-- support system's own figures: calendar minutes, and business minutes where schedules exist.
with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as ticket_metric_id,
        cast({{ json_text('record', ['ticket_id']) }} as bigint) as ticket_id,
        {{ vendor_timestamp(json_text('record', ['updated_at'])) }} as updated_at,
        {{ vendor_timestamp(json_text('record', ['solved_at'])) }} as solved_at,
        cast({{ json_text('record', ['replies']) }} as integer) as replies,
        cast({{ json_text('record', ['reopens']) }} as integer) as reopens,
        cast({{ json_text('record', ['reply_time_in_minutes', 'calendar']) }} as double precision)
            as first_reply_minutes_calendar,
        cast({{ json_text('record', ['reply_time_in_minutes', 'business']) }} as double precision)
            as first_reply_minutes_business,
        cast({{ json_text('record', ['first_resolution_time_in_minutes', 'calendar']) }} as double precision)
            as first_resolution_minutes_calendar,
        cast({{ json_text('record', ['first_resolution_time_in_minutes', 'business']) }} as double precision)
            as first_resolution_minutes_business,
        cast({{ json_text('record', ['full_resolution_time_in_minutes', 'calendar']) }} as double precision)
            as full_resolution_minutes_calendar,
        cast({{ json_text('record', ['full_resolution_time_in_minutes', 'business']) }} as double precision)
            as full_resolution_minutes_business,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'ticket_metrics') }}
),

ranked as (
    {{ rank_versions('versions', 'ticket_id', 'updated_at') }}
)

select
    ticket_metric_id,
    ticket_id,
    updated_at,
    solved_at,
    replies,
    reopens,
    first_reply_minutes_calendar,
    first_reply_minutes_business,
    first_resolution_minutes_calendar,
    first_resolution_minutes_business,
    full_resolution_minutes_calendar,
    full_resolution_minutes_business,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1

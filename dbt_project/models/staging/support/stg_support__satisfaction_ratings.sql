-- Current state of each Zendesk satisfaction rating: the latest version by updated_at (a
-- rating is offered, then answered good or bad). The free-text comment is not carried.
with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as satisfaction_rating_id,
        cast({{ json_text('record', ['ticket_id']) }} as bigint) as ticket_id,
        {{ json_text('record', ['score']) }} as score,
        cast({{ json_text('record', ['requester_id']) }} as bigint) as requester_id,
        cast({{ json_text('record', ['assignee_id']) }} as bigint) as assignee_id,
        cast({{ json_text('record', ['group_id']) }} as bigint) as group_id,
        {{ vendor_timestamp(json_text('record', ['created_at'])) }} as created_at,
        {{ vendor_timestamp(json_text('record', ['updated_at'])) }} as updated_at,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'satisfaction_ratings') }}
),

ranked as (
    {{ rank_versions('versions', 'satisfaction_rating_id', 'updated_at') }}
)

select
    satisfaction_rating_id,
    ticket_id,
    score,
    requester_id,
    assignee_id,
    group_id,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1

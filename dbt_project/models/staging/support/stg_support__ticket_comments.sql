-- Zendesk ticket comments, one row per comment (every public reply and internal note).
-- Comments are immutable: a comment delivered in two extracts appears once. The body (free
-- text that may hold personal data) is not carried.
with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as comment_id,
        cast({{ json_text('record', ['ticket_id']) }} as bigint) as ticket_id,
        cast({{ json_text('record', ['author_id']) }} as bigint) as author_id,
        coalesce({{ json_text('record', ['public']) }} = 'true', false) as is_public,
        {{ json_text('record', ['via', 'channel']) }} as channel,
        {{ vendor_timestamp(json_text('record', ['created_at'])) }} as created_at,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'ticket_comments') }}
),

ranked as (
    {{ rank_versions('versions', 'comment_id') }}
)

select
    comment_id,
    ticket_id,
    author_id,
    is_public,
    channel,
    created_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1

-- Every delivered version of every Zendesk ticket (an incremental export delivers a ticket again
-- each time it changes: its status history lives in the versions). stg_support__tickets keeps
-- the latest one.
select
    cast({{ json_text('record', ['id']) }} as bigint) as ticket_id,
    {{ vendor_timestamp(json_text('record', ['created_at'])) }} as created_at,
    {{ vendor_timestamp(json_text('record', ['updated_at'])) }} as updated_at,
    {{ json_text('record', ['status']) }} as status,
    {{ json_text('record', ['priority']) }} as priority,
    {{ json_text('record', ['type']) }} as ticket_type,
    {{ json_text('record', ['via', 'channel']) }} as channel,
    cast({{ json_text('record', ['requester_id']) }} as bigint) as requester_id,
    cast({{ json_text('record', ['assignee_id']) }} as bigint) as assignee_id,
    cast({{ json_text('record', ['group_id']) }} as bigint) as group_id,
    cast({{ json_text('record', ['organization_id']) }} as bigint) as organization_id,
    {{ json_text('record', ['satisfaction_rating', 'score']) }} as satisfaction_score,
    cast({{ json_text('record', ['satisfaction_rating', 'id']) }} as bigint) as satisfaction_rating_id,
    _extract_date,
    _source_file,
    _record_number
from {{ source('support', 'tickets') }}

-- Current state of each HubSpot call engagement: the latest version by updatedAt; archived
-- calls leave the current state. The call title (free text) is not carried.
with versions as (
    select
        {{ json_text('record', ['id']) }} as call_id,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_timestamp'])) }} as activity_at,
        {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
        {{ json_text('record', ['properties', 'hs_call_direction']) }} as call_direction,
        {{ json_text('record', ['properties', 'hs_call_status']) }} as call_status,
        cast({{ json_text('record', ['properties', 'hs_call_duration']) }} as bigint) as call_duration_ms,
        {{ vendor_timestamp(json_text('record', ['createdAt'])) }} as created_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'calls') }}
),

ranked as (
    {{ rank_versions('versions', 'call_id', 'updated_at') }}
)

select
    call_id,
    activity_at,
    owner_id,
    call_direction,
    call_status,
    call_duration_ms,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

-- Current state of each HubSpot meeting engagement: the latest version by updatedAt (a
-- meeting is booked, then its outcome is set); archived meetings leave the current state.
-- The meeting title (free text) is not carried.
with versions as (
    select
        {{ json_text('record', ['id']) }} as meeting_id,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_timestamp'])) }} as activity_at,
        {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_meeting_start_time'])) }} as meeting_start_at,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_meeting_end_time'])) }} as meeting_end_at,
        {{ json_text('record', ['properties', 'hs_meeting_location']) }} as meeting_location,
        {{ json_text('record', ['properties', 'hs_meeting_outcome']) }} as meeting_outcome,
        {{ vendor_timestamp(json_text('record', ['createdAt'])) }} as created_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'meetings') }}
),

ranked as (
    {{ rank_versions('versions', 'meeting_id', 'updated_at') }}
)

select
    meeting_id,
    activity_at,
    owner_id,
    meeting_start_at,
    meeting_end_at,
    meeting_location,
    meeting_outcome,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

-- Current state of each HubSpot email engagement (one-to-one sales emails logged in the CRM):
-- the latest version by updatedAt; archived ones leave the current state. The subject and
-- body (free text that may name people) are not carried.
with versions as (
    select
        {{ json_text('record', ['id']) }} as email_id,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_timestamp'])) }} as activity_at,
        {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
        {{ json_text('record', ['properties', 'hs_email_direction']) }} as email_direction,
        {{ json_text('record', ['properties', 'hs_email_status']) }} as email_status,
        {{ vendor_timestamp(json_text('record', ['createdAt'])) }} as created_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'emails') }}
),

ranked as (
    {{ rank_versions('versions', 'email_id', 'updated_at') }}
)

select
    email_id,
    activity_at,
    owner_id,
    email_direction,
    email_status,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

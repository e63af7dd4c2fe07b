-- HubSpot marketing email events, one row per event. Events are immutable: an event
-- delivered in two extracts appears once. The recipient is pseudonymised (keyed hash of the
-- normalised address, equal to the contact's email_hash); its domain stays in clear.
-- A table: the pseudonyms are computed once, and no view text holds the key.
{{ config(materialized='table') }}

with versions as (
    select
        {{ json_text('record', ['id']) }} as email_event_id,
        {{ json_text('record', ['type']) }} as event_type,
        {{ vendor_timestamp(json_text('record', ['created'])) }} as event_at,
        {{ pseudonymise(normalised_email(json_text('record', ['recipient']))) }} as recipient_hash,
        {{ email_domain(json_text('record', ['recipient'])) }} as recipient_email_domain,
        {{ json_text('record', ['emailCampaignId']) }} as email_campaign_id,
        {{ json_text('record', ['sentBy', 'id']) }} as sent_by_id,
        {{ json_text('record', ['category']) }} as bounce_category,
        {{ json_text('record', ['dropReason']) }} as drop_reason,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('crm', 'email_events') }}
),

ranked as (
    {{ rank_versions('versions', 'email_event_id') }}
)

select
    email_event_id,
    event_type,
    event_at,
    recipient_hash,
    recipient_email_domain,
    email_campaign_id,
    sent_by_id,
    bounce_category,
    drop_reason,
    _extract_date,
    _source_file
from ranked
where version_rank = 1

-- HubSpot marketing email events, one row per event. Events are immutable: an event
-- delivered in two extracts appears once. The recipient is pseudonymised (keyed hash of the
-- normalised address, equal to the contact's email_hash); its domain stays in clear.
-- A table: the pseudonyms are computed once, and no view text holds the key. Each record is
-- parsed once for its fields (json_record_fields).
{{ config(materialized='table') }}

with records as (
    {{ json_record_fields(source('crm', 'email_events'), {
        'email_event_id': ['id'],
        'event_type': ['type'],
        'created': ['created'],
        'recipient': ['recipient'],
        'email_campaign_id': ['emailCampaignId'],
        'sent_by_id': ['sentBy', 'id'],
        'bounce_category': ['category'],
        'drop_reason': ['dropReason'],
    }) }}
),

versions as (
    select
        email_event_id,
        event_type,
        {{ vendor_timestamp('created') }} as event_at,
        {{ pseudonymise(normalised_email('recipient')) }} as recipient_hash,
        {{ email_domain('recipient') }} as recipient_email_domain,
        email_campaign_id,
        sent_by_id,
        bounce_category,
        drop_reason,
        _extract_date,
        _source_file,
        _record_number
    from records
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
    _source_file,
    _record_number
from ranked
where version_rank = 1

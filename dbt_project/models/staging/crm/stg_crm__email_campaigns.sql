-- HubSpot marketing email campaigns, one row per campaign (the export has no update
-- timestamp: the latest delivery wins).
with versions as (
    select
        {{ json_text('record', ['id']) }} as email_campaign_id,
        {{ json_text('record', ['name']) }} as campaign_name,
        {{ json_text('record', ['subject']) }} as subject,
        {{ json_text('record', ['type']) }} as campaign_type,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('crm', 'email_campaigns') }}
),

ranked as (
    {{ rank_versions('versions', 'email_campaign_id') }}
)

select
    email_campaign_id,
    campaign_name,
    subject,
    campaign_type,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1

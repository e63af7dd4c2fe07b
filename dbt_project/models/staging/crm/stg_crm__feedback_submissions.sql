-- HubSpot survey answers (NPS, CSAT, CES), current state of each submission (latest version
-- by updatedAt; archived ones removed). The free-text answer is not carried.
with versions as (
    select
        {{ json_text('record', ['id']) }} as submission_id,
        {{ json_text('record', ['properties', 'hs_survey_type']) }} as survey_type,
        {{ json_text('record', ['properties', 'hs_survey_id']) }} as survey_id,
        {{ json_text('record', ['properties', 'hs_survey_name']) }} as survey_name,
        cast({{ json_text('record', ['properties', 'hs_response_value']) }} as integer) as response_value,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_submission_timestamp'])) }} as submitted_at,
        {{ json_text('record', ['properties', 'hs_contact_id']) }} as contact_id,
        {{ vendor_timestamp(json_text('record', ['createdAt'])) }} as created_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'feedback_submissions') }}
),

ranked as (
    {{ rank_versions('versions', 'submission_id', 'updated_at') }}
)

select
    submission_id,
    survey_type,
    survey_id,
    survey_name,
    response_value,
    submitted_at,
    contact_id,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

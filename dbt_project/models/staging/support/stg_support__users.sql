-- Current state of each Zendesk user (requesters and agents): the latest delivery wins (the
-- contract does not promise updated_at); deleted users (active false, or deleted true) leave
-- the current state. Name and email are pseudonymised: email_hash equals the CRM contact's
-- email_hash for the same address, whatever its case and spaces.
-- A table: the pseudonyms are computed once, and no view text holds the key.
{{ config(materialized='table') }}

with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as user_id,
        {{ pseudonymise(json_text('record', ['name'])) }} as name_hash,
        {{ pseudonymise(normalised_email(json_text('record', ['email']))) }} as email_hash,
        {{ email_domain(json_text('record', ['email'])) }} as email_domain,
        {{ json_text('record', ['role']) }} as user_role,
        cast({{ json_text('record', ['organization_id']) }} as bigint) as organization_id,
        {{ json_text('record', ['time_zone']) }} as time_zone,
        {{ vendor_timestamp(json_text('record', ['created_at'])) }} as created_at,
        {{ vendor_timestamp(json_text('record', ['updated_at'])) }} as updated_at,
        coalesce({{ json_text('record', ['active']) }} = 'false', false)
        or coalesce({{ json_text('record', ['deleted']) }} = 'true', false) as is_deleted,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'users') }}
),

ranked as (
    {{ rank_versions('versions', 'user_id') }}
)

select
    user_id,
    name_hash,
    email_hash,
    email_domain,
    user_role,
    organization_id,
    time_zone,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_deleted

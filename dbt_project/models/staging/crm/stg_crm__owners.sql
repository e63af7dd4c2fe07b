-- Current state of each HubSpot owner (sales rep): the latest version by updatedAt (by
-- delivery order when the export has no updatedAt); archived owners leave the current state.
-- Email and names are pseudonymised; teams are in stg_crm__owner_teams.
-- A table: the pseudonyms are computed once, and no view text holds the key.
{{ config(materialized='table') }}

with versions as (
    select
        {{ json_text('record', ['id']) }} as owner_id,
        {{ pseudonymise(normalised_email(json_text('record', ['email']))) }} as email_hash,
        {{ email_domain(json_text('record', ['email'])) }} as email_domain,
        {{ pseudonymise(json_text('record', ['firstName'])) }} as first_name_hash,
        {{ pseudonymise(json_text('record', ['lastName'])) }} as last_name_hash,
        {{ vendor_timestamp(json_text('record', ['createdAt'])) }} as created_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'owners') }}
),

ranked as (
    {{ rank_versions('versions', 'owner_id', 'updated_at') }}
)

select
    owner_id,
    email_hash,
    email_domain,
    first_name_hash,
    last_name_hash,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

-- One row per current owner and team, from the teams array of the owner's current version
-- (the same ranking as stg_crm__owners: a team change replaces the owner's teams).
with versions as (
    select
        {{ json_text('record', ['id']) }} as owner_id,
        {{ vendor_timestamp(json_text('record', ['updatedAt'])) }} as updated_at,
        coalesce({{ json_text('record', ['archived']) }} = 'true', false) as is_archived,
        record,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('crm', 'owners') }}
),

owners as (
    {{ rank_versions('versions', 'owner_id', 'updated_at') }}
),

teams as (
    select
        owners.owner_id,
        {{ json_text('team.value', ['id']) }} as team_id,
        {{ json_text('team.value', ['name']) }} as team_name,
        coalesce({{ json_text('team.value', ['primary']) }} = 'true', false) as is_primary_team
    from owners
    {{ json_array_rows('owners.record', ['teams'], 'team') }}
    where owners.version_rank = 1 and not owners.is_archived
)

select
    owner_id,
    team_id,
    team_name,
    is_primary_team
from teams

-- One row per current Zendesk organisation and domain name (lower-case), from the
-- domain_names array of the organisation's current version (same ranking as
-- stg_support__organizations). Domains cannot hold quotes, so the JSON text of each array
-- element, without its quotes, is the domain.
with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as organization_id,
        {{ json_text('record', ['deleted_at']) }} is not null as is_deleted,
        record,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'organizations') }}
),

organizations as (
    {{ rank_versions('versions', 'organization_id') }}
),

domains as (
    select
        organizations.organization_id,
        nullif(lower(trim(replace(cast(domain_element.value as {{ dbt.type_string() }}), '"', ''))), '') as domain_name
    from organizations
    {{ json_array_rows('organizations.record', ['domain_names'], 'domain_element') }}
    where organizations.version_rank = 1 and not organizations.is_deleted
)

select distinct
    organization_id,
    domain_name
from domains
where domain_name is not null

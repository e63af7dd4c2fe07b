-- Zendesk organisations, current state (the latest delivery wins; deleted organisations
-- removed), with the first of their domain names. Every domain, for the identity join
-- organisation domain = CRM company domain, is in stg_support__organization_domains.
with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as organization_id,
        {{ json_text('record', ['name']) }} as organization_name,
        nullif(lower(trim({{ json_text('record', ['domain_names[0]']) }})), '') as first_domain_name,
        {{ vendor_timestamp(json_text('record', ['created_at'])) }} as created_at,
        {{ vendor_timestamp(json_text('record', ['updated_at'])) }} as updated_at,
        {{ json_text('record', ['deleted_at']) }} is not null as is_deleted,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'organizations') }}
),

ranked as (
    {{ rank_versions('versions', 'organization_id') }}
)

select
    organization_id,
    organization_name,
    first_domain_name,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_deleted

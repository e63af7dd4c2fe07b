-- Current state of each HubSpot company: the latest version by updatedAt, whatever the file
-- order; archived companies (merged duplicates) leave the current state. The domain is
-- lower-case: it is the identity join to the support desk's organisation domains.
with versions as (
    select
        {{ json_text('record', ['id']) }} as company_id,
        {{ json_text('record', ['properties', 'name']) }} as company_name,
        nullif(lower(trim({{ json_text('record', ['properties', 'domain']) }})), '') as company_domain,
        {{ json_text('record', ['properties', 'country']) }} as country,
        {{ json_text('record', ['properties', 'industry']) }} as industry,
        cast({{ json_text('record', ['properties', 'numberofemployees']) }} as integer) as employee_count,
        {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
        {{ vendor_timestamp(json_text('record', ['properties', 'createdate'])) }} as created_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'companies') }}
),

ranked as (
    {{ rank_versions('versions', 'company_id', 'updated_at') }}
)

select
    company_id,
    company_name,
    company_domain,
    country,
    industry,
    employee_count,
    owner_id,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

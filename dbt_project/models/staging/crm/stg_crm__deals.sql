-- Current state of each HubSpot deal: the latest version by updatedAt, whatever the file
-- order; archived deals leave the current state.
with versions as (
    select
        {{ json_text('record', ['id']) }} as deal_id,
        {{ json_text('record', ['properties', 'dealname']) }} as deal_name,
        cast({{ json_text('record', ['properties', 'amount']) }} as decimal(18, 2)) as amount,
        upper(
            coalesce({{ json_text('record', ['properties', 'deal_currency_code']) }}, '{{ var("reporting_currency") }}')
        ) as currency,
        {{ json_text('record', ['properties', 'dealstage']) }} as stage_id,
        {{ json_text('record', ['properties', 'pipeline']) }} as pipeline_id,
        {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
        {{ json_text('record', ['properties', 'product_line']) }} as product_line,
        {{ vendor_timestamp(json_text('record', ['properties', 'createdate'])) }} as created_at,
        {{ vendor_timestamp(json_text('record', ['properties', 'closedate'])) }} as closed_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'deals') }}
),

ranked as (
    {{ rank_versions('versions', 'deal_id', 'updated_at') }}
)

select
    deal_id,
    deal_name,
    amount,
    currency,
    stage_id,
    pipeline_id,
    owner_id,
    product_line,
    created_at,
    closed_at,
    updated_at,
    _extract_date,
    _source_file
from ranked
where version_rank = 1 and not is_archived

-- Every delivered version of every HubSpot deal (the stage history lives in the versions:
-- incremental extracts deliver a deal again each time it changes). stg_crm__deals keeps the
-- latest one. Associations keep HubSpot's order: the first company and contact are the primary ones.
select
    {{ json_text('record', ['id']) }} as deal_id,
    {{ json_text('record', ['properties', 'dealname']) }} as deal_name,
    cast({{ json_text('record', ['properties', 'amount']) }} as decimal(18, 2)) as amount,
    upper(
        coalesce({{ json_text('record', ['properties', 'deal_currency_code']) }}, '{{ var("reporting_currency") }}')
    ) as currency,
    cast({{ json_text('record', ['properties', 'recurring_revenue_amount']) }} as decimal(18, 2))
        as recurring_revenue_amount,
    cast({{ json_text('record', ['properties', 'contract_end_date']) }} as date) as contract_end_date,
    {{ json_text('record', ['properties', 'dealstage']) }} as stage_id,
    {{ json_text('record', ['properties', 'pipeline']) }} as pipeline_id,
    {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
    {{ json_text('record', ['properties', 'product_line']) }} as product_line,
    {{ json_text('record', ['associations', 'companies', 'results[0]', 'id']) }} as company_id,
    {{ json_text('record', ['associations', 'contacts', 'results[0]', 'id']) }} as contact_id,
    {{ vendor_timestamp(json_text('record', ['properties', 'createdate'])) }} as created_at,
    {{ vendor_timestamp(json_text('record', ['properties', 'closedate'])) }} as closed_at,
    {{ hubspot_version_columns() }}
from {{ source('crm', 'deals') }}

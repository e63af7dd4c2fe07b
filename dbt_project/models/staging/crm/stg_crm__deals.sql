-- Current state of each HubSpot deal: the latest version by updatedAt, whatever the file
-- order; archived deals leave the current state.
with ranked as (
    {{ rank_versions(ref('stg_crm__deal_versions'), 'deal_id', 'updated_at') }}
)

select
    deal_id,
    deal_name,
    amount,
    currency,
    recurring_revenue_amount,
    contract_end_date,
    stage_id,
    pipeline_id,
    owner_id,
    product_line,
    company_id,
    contact_id,
    created_at,
    closed_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived

-- The spells of each deal in an open stage (neither won nor lost), with the deal's current
-- amount and slices: the stock behind open_pipeline_value and weighted_pipeline_value.
select
    stage_changes.deal_id,
    stage_changes.stage_id,
    stage_changes.stage_probability,
    stage_changes.entered_date,
    stage_changes.left_date,
    deals.amount_reporting,
    deals.owner_id,
    deals.team_name,
    deals.pipeline_label,
    deals.product_line,
    deals.company_country,
    deals.company_region,
    deals.currency_original
from {{ ref('fct_deal_stage_changes') }} as stage_changes
inner join {{ ref('fct_deals') }} as deals
    on stage_changes.deal_id = deals.deal_id
where not stage_changes.is_won and not stage_changes.is_lost

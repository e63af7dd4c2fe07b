-- One row per current deal, with won/lost from stage metadata, the reporting-zone dates that
-- attribute it to periods, and the amount converted at the FX rate of its close date
-- (its create date while open). The original amount and currency stay beside it.
with deals as (
    select
        deals.*,
        {{ reporting_date('deals.created_at') }} as create_date,
        {{ reporting_date('deals.closed_at') }} as close_date
    from {{ ref('stg_crm__deals') }} as deals
)

select
    deals.deal_id,
    deals.deal_name,
    deals.pipeline_id,
    deal_stages.pipeline_label,
    deals.stage_id,
    deal_stages.stage_label,
    coalesce(deal_stages.is_closed, false) as is_closed,
    coalesce(deal_stages.is_won, false) as is_won,
    coalesce(deal_stages.is_lost, false) as is_lost,
    deal_stages.probability as stage_probability,
    deals.owner_id,
    coalesce(deals.product_line, '(not set)') as product_line,
    deals.create_date,
    case when deal_stages.is_closed then deals.close_date end as close_date,
    deals.amount as amount_original,
    deals.currency as currency_original,
    case
        when deals.currency = '{{ var("reporting_currency") }}' then deals.amount
        else deals.amount * fx.rate_to_reporting
    end as amount_reporting,
    deals.updated_at
from deals
left join {{ ref('stg_crm__pipeline_stages') }} as deal_stages
    on deals.pipeline_id = deal_stages.pipeline_id and deals.stage_id = deal_stages.stage_id
left join {{ ref('int_fx__rate_periods') }} as fx
    on
        deals.currency = fx.currency
        and coalesce(deals.close_date, deals.create_date) >= fx.valid_from
        and (fx.valid_until is null or coalesce(deals.close_date, deals.create_date) < fx.valid_until)

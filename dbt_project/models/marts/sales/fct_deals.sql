-- One row per current deal, with won/lost from stage metadata, the reporting-zone dates that
-- attribute it to periods, and the amounts converted at the FX rate of its close date (its
-- create date while open: an open deal's closedate is only the expected one). The original
-- amount and currency stay beside them. Company, contact and team attributes are the
-- current ones, denormalised for slicing.
with deals as (
    select
        deals.*,
        {{ deal_stage_columns('deal_stages') }},
        {{ reporting_date('deals.created_at') }} as create_date,
        case when deal_stages.is_closed then {{ reporting_date('deals.closed_at') }} end as close_date,
        coalesce(deals.recurring_revenue_amount, 0) > 0 as is_recurring
    from {{ ref('stg_crm__deals') }} as deals
    left join {{ ref('stg_crm__pipeline_stages') }} as deal_stages
        on deals.pipeline_id = deal_stages.pipeline_id and deals.stage_id = deal_stages.stage_id
),

won_ranks as (
    select
        deal_id,
        row_number() over (partition by company_id order by close_date, closed_at, deal_id) as won_rank
    from deals
    where is_won and company_id is not null
)

select
    deals.deal_id,
    deals.deal_name,
    deals.pipeline_id,
    deals.pipeline_label,
    deals.stage_id,
    deals.stage_label,
    deals.is_closed,
    deals.is_won,
    deals.is_lost,
    deals.stage_probability,
    {{ deal_slice_columns('deals') }},
    deals.contact_id,
    coalesce(contacts.channel_group, 'Unassigned') as channel_group,
    coalesce(contacts.is_paid_channel, false) as is_paid_channel,
    coalesce(deals.product_line, '(not set)') as product_line,
    deals.create_date,
    deals.close_date,
    -- calendar days between reporting-zone dates (10th to 15th = 5)
    {{ dbt.datediff('deals.create_date', 'deals.close_date', 'day') }}
        as cycle_days,
    deals.amount as amount_original,
    deals.currency as currency_original,
    {{ to_reporting_currency('deals.amount', 'deals.currency') }} as amount_reporting,
    deals.is_recurring,
    case when deals.is_recurring then deals.recurring_revenue_amount end as monthly_recurring_amount_original,
    {{ deal_contract_columns('deals', 'deals.is_won') }},
    coalesce(won_ranks.won_rank = 1, false) as is_first_won_deal_of_company,
    deals.updated_at
from deals
left join won_ranks on deals.deal_id = won_ranks.deal_id
{{ deal_slice_joins('deals') }}
left join {{ ref('dim_contact') }} as contacts on deals.contact_id = contacts.contact_id
{{ fx_rate_join('deals.currency', 'coalesce(deals.close_date, deals.create_date)') }}

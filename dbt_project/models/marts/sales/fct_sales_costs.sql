-- Sales team costs per month, converted at the FX rate of the month's first day.
select
    costs.month_start,
    costs.team_name,
    costs.cost_amount as cost_original,
    costs.currency as currency_original,
    case
        when costs.currency = '{{ var("reporting_currency") }}' then costs.cost_amount
        else costs.cost_amount * fx.rate_to_reporting
    end as cost_reporting
from {{ ref('stg_spend__sales_costs') }} as costs
left join {{ ref('int_fx__rate_periods') }} as fx
    on
        costs.currency = fx.currency
        and costs.month_start >= fx.valid_from
        and (fx.valid_until is null or costs.month_start < fx.valid_until)

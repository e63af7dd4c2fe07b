-- Sales team costs per month, converted at the FX rate of the month's first day.
select
    sales_costs.month_start,
    sales_costs.team_name,
    sales_costs.cost_amount as cost_original,
    sales_costs.currency as currency_original,
    case
        when sales_costs.currency = '{{ var("reporting_currency") }}' then sales_costs.cost_amount
        else sales_costs.cost_amount * fx.rate_to_reporting
    end as cost_reporting
from {{ ref('stg_spend__sales_costs') }} as sales_costs
left join {{ ref('int_fx__rate_periods') }} as fx
    on
        sales_costs.currency = fx.currency
        and sales_costs.month_start >= fx.valid_from
        and (fx.valid_until is null or sales_costs.month_start < fx.valid_until)

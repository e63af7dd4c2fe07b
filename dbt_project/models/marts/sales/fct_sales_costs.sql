-- Sales team costs per month, converted at the FX rate of the month's first day.
select
    sales_costs.month_start,
    sales_costs.team_name,
    sales_costs.cost_amount as cost_original,
    sales_costs.currency as currency_original,
    {{ to_reporting_currency('sales_costs.cost_amount', 'sales_costs.currency') }} as cost_reporting
from {{ ref('stg_spend__sales_costs') }} as sales_costs
{{ fx_rate_join('sales_costs.currency', 'sales_costs.month_start') }}

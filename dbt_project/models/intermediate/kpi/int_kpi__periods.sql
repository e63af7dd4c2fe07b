-- Every period of every KPI grain up to the one holding the as-of date, with its end, the
-- start of the period before it, and how far the as-of date has gone into it (for pacing).
{% set as_of_date = kpi_as_of_date() %}

with periods as (
    {%- for grain in var('kpi_grains') %}
        select
            '{{ grain }}' as grain,
            {{ 'date_day' if grain == 'day' else grain ~ '_start' }} as period_start,
            max(date_day) as period_end
        from {{ ref('dim_date') }}
        group by 2
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    grain,
    period_start,
    period_end,
    lag(period_start) over (partition by grain order by period_start) as previous_period_start,
    {{ dbt.datediff('period_start', 'period_end', 'day') }} + 1 as days_in_period,
    case
        when period_end < {{ as_of_date }} then {{ dbt.datediff('period_start', 'period_end', 'day') }} + 1
        else {{ dbt.datediff('period_start', as_of_date, 'day') }} + 1
    end as days_elapsed,
    period_end < {{ as_of_date }} as is_complete_period
from periods
where period_start <= {{ as_of_date }}

-- Every period of every KPI grain in the calendar, with its end, the start of the period
-- before it, and how far the as-of date has gone into it (for pacing).
with as_of as (
    select {{ kpi_as_of_date() }} as as_of_date
),

periods as (
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
),

-- Periods after the as-of date stay: a flow may hold a date beyond it (a deal's close date
-- set ahead). Stocks and zero rows stop at the as-of date (has_started).
elapsed as (
    select
        periods.*,
        least(periods.period_end, as_of.as_of_date) as last_elapsed_day,
        periods.period_start <= as_of.as_of_date as has_started,
        periods.period_end < as_of.as_of_date as is_complete_period
    from periods
    cross join as_of
)

select
    grain,
    period_start,
    period_end,
    lag(period_start) over (partition by grain order by period_start) as previous_period_start,
    -- dbt's datediff renders long on DuckDB
    {{ dbt.datediff('period_start', 'period_end', 'day') }} + 1 as days_in_period,  -- noqa: LT05
    case
        when has_started then {{ dbt.datediff('period_start', 'last_elapsed_day', 'day') }} + 1  -- noqa: LT05
        else 0
    end as days_elapsed,
    has_started,
    is_complete_period
from elapsed

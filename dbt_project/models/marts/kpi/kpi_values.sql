-- The KPI mart in long form: one row per KPI, grain, period and slice.
-- Company-wide rows have dimension = 'all' and dimension_value = 'all'.
{% set kpi_models = [
    'int_kpi__revenue',
    'int_kpi__sessions',
    'int_kpi__first_response_time_min',
] %}

with kpi_rows as (
    {%- for model in kpi_models %}
        select * from {{ ref(model) }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    kpi_id,
    grain,
    period_start,
    case grain
        {%- for grain in var('kpi_grains') %}
            when '{{ grain }}' then cast({{ dbt.dateadd('day', -1, dbt.dateadd(grain, 1, 'period_start')) }} as date)
        {%- endfor %}
    end as period_end,
    dimension,
    dimension_value,
    numerator,
    denominator,
    value
from kpi_rows

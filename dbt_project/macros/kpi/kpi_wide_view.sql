{#- One row per grain, period and slice with one value column per KPI of a category. -#}
{% macro kpi_wide_view(category) -%}
    {%- set kpi_ids = kpi_catalogue() | selectattr('category', 'equalto', category) | map(attribute='id') | list -%}
    {{ config(materialized='view') }}
    select
        grain,
        period_start,
        period_end,
        dimension,
        dimension_value,
        {%- for kpi_id in kpi_ids %}
            max(case when kpi_id = '{{ kpi_id }}' then value end) as {{ kpi_id }},
        {%- endfor %}
        min(case when is_complete_period then 1 else 0 end) = 1 as is_complete_period
    from {{ ref('kpi_values') }}
    where kpi_id in ('{{ kpi_ids | join("', '") }}')
    group by grain, period_start, period_end, dimension, dimension_value
{%- endmacro %}

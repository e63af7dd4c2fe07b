{#-
    The rows of one KPI in the long kpi_values shape, for every grain and slice.

    Each grain is aggregated from the fact rows themselves (never by adding up daily ratios
    or medians), so ratios are ratios of sums and medians are true medians at every grain.

    relation     the fact model (a ref)
    date_column  the date that attributes a row to a period (reporting time zone)
    numerator    aggregate expression, e.g. sum(amount_reporting)
    denominator  aggregate expression, or none for a plain total
    value        expression over aggregates; default numerator / denominator, or numerator
    slices       {dimension name: column} pairs; 'all' is always produced
    where        optional filter on the fact rows
-#}
{% macro kpi_rows(kpi_id, relation, date_column, numerator, denominator=none, value=none, slices={}, where=none) -%}
    {%- set dimensions = [('all', none)] + (slices.items() | list) -%}
    {%- if value is none -%}
        {%- set value = numerator if denominator is none
            else '(' ~ numerator ~ ') / nullif(' ~ denominator ~ ', 0)' -%}
    {%- endif -%}
    {%- for grain in var('kpi_grains') -%}
        {%- for dimension, column in dimensions %}
    select
        '{{ kpi_id }}' as kpi_id,
        '{{ grain }}' as grain,
        cast({{ dbt.date_trunc(grain, date_column) }} as date) as period_start,
        '{{ dimension }}' as dimension,
        {% if column is none -%}
        'all'
        {%- else -%}
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), '(not set)')
        {%- endif %} as dimension_value,
        cast({{ numerator }} as {{ dbt.type_float() }}) as numerator,
        cast({{ denominator if denominator is not none else 'null' }} as {{ dbt.type_float() }}) as denominator,
        cast({{ value }} as {{ dbt.type_float() }}) as value
    from {{ relation }}
    where {{ date_column }} is not null{% if where %} and ({{ where }}){% endif %}
    group by 1, 2, 3, 4, 5
        {%- if not loop.last %}
    union all
        {%- endif %}
        {%- endfor %}
        {%- if not loop.last %}
    union all
        {%- endif %}
    {%- endfor %}
{%- endmacro %}

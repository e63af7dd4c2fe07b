{#-
    The rows of the KPIs defined from other KPIs (computation type 'combination'): each
    input is another KPI's value at the same grain, period and slice, or at the period
    before with 'kpi_id@previous'. Inputs are computed first, in dependency order.

    base_relation  the rows of the KPIs computed from facts
-#}
{% macro kpi_combination_rows(base_relation) -%}
    {%- set combinations = kpi_catalogue() | selectattr('computation.type', 'equalto', 'combination') | list -%}
    {%- set combination_ids = combinations | map(attribute='id') | list -%}
    {%- set ordered = kpi_dependency_order(combinations) -%}
    with periods as (
        select
            grain,
            period_start,
            previous_period_start
        from {{ ref('int_kpi__periods') }}
    )
    {%- for kpi in ordered %},

    {{ kpi_definition_comment(kpi) }}
    -- inputs: {% for name, input in kpi.computation.inputs.items() %}{{ name }} = {{ input }}{{ ', ' if not loop.last }}{% endfor %}
    kpi_{{ kpi.id }}_inputs as (
        {%- set inputs = kpi.computation.inputs.items() | list %}
        {%- set driver_kpi = inputs[0][1] %}
        select
            driver.grain,
            driver.period_start,
            driver.dimension,
            driver.dimension_value
            {%- for name, input in inputs %},
            {#- A sum or count with no row for the slice and period is zero there. #}
            {%- if kpi_by_id(input.split('@')[0]).get('additive') %}
            coalesce(input_{{ loop.index }}.value, 0) as {{ name }}
            {%- else %}
            input_{{ loop.index }}.value as {{ name }}
            {%- endif %}
            {%- endfor %}
        from {{ kpi_rows_relation(driver_kpi, combination_ids, base_relation) }} as driver
        inner join periods
            on driver.grain = periods.grain and driver.period_start = periods.period_start
        {%- for name, input in inputs %}
            {%- set input_kpi = input.split('@')[0] %}
        left join {{ kpi_rows_relation(input_kpi, combination_ids, base_relation) }} as input_{{ loop.index }}
            on
                input_{{ loop.index }}.kpi_id = '{{ input_kpi }}'
                and driver.grain = input_{{ loop.index }}.grain
                and {{ 'periods.previous_period_start' if input.endswith('@previous') else 'driver.period_start' }}
                = input_{{ loop.index }}.period_start
                and driver.dimension = input_{{ loop.index }}.dimension
                and driver.dimension_value = input_{{ loop.index }}.dimension_value
        {%- endfor %}
        where
            driver.kpi_id = '{{ driver_kpi }}'
            and driver.grain in ('{{ kpi_grains(kpi) | join("', '") }}')
            and driver.dimension in ('{{ (['all'] + (kpi_slices(kpi).keys() | list)) | join("', '") }}')
    ),

    kpi_{{ kpi.id }} as (
        select
            {{ kpi_key_columns(kpi) | indent(8) }},
            {{ kpi_measure_columns(kpi.computation) | indent(8) }}
        from kpi_{{ kpi.id }}_inputs
    )
    {%- endfor %}

    {{- kpi_rows_of(ordered) }}
{%- endmacro %}

{#- The relation holding a KPI's rows: the base rows, or the CTE of a combination. -#}
{% macro kpi_rows_relation(kpi_id, combination_ids, base_relation) -%}
    {{ 'kpi_' ~ kpi_id if kpi_id in combination_ids else base_relation }}
{%- endmacro %}

{#- Combinations ordered so that each comes after the combinations it reads. -#}
{% macro kpi_dependency_order(combinations) -%}
    {%- set ordered = [] -%}
    {%- set placed = [] -%}
    {%- set combination_ids = combinations | map(attribute='id') | list -%}
    {%- for _ in combinations -%}
        {%- for kpi in combinations if kpi.id not in placed -%}
            {%- set ns = namespace(ready=true) -%}
            {%- for input in kpi.computation.inputs.values() -%}
                {%- set input_kpi = kpi_by_id(input.split('@')[0]).id -%}
                {%- if input_kpi in combination_ids and input_kpi not in placed -%}
                    {%- set ns.ready = false -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if ns.ready -%}
                {%- do ordered.append(kpi) -%}
                {%- do placed.append(kpi.id) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if ordered | length != combinations | length -%}
        {{ exceptions.raise_compiler_error("KPI combinations form a cycle: " ~ (combination_ids | reject('in', placed) | list)) }}
    {%- endif -%}
    {{ return(ordered) }}
{%- endmacro %}

{#-
    The rows of the KPIs of one catalogue category that are computed from facts, for every
    grain and slice, in the shape kpi_id, grain, period_start, dimension, dimension_value,
    numerator, denominator, value, secondary_value. Company-wide rows have dimension and
    dimension_value 'all'.

    Each grain is aggregated from the fact rows themselves (never from daily results), so a
    ratio is a ratio of sums and a median a true median at every grain.
-#}
{% macro kpi_family_rows(category) -%}
    {%- set selects = [] -%}
    {%- for kpi in kpi_catalogue() if kpi.category == category and kpi.computation.type in ('aggregate', 'at_period_end') -%}
        {%- if kpi_rolls_up_from_days(kpi) -%}
            {%- do selects.append(kpi_rolled_up_select(kpi)) -%}
        {%- else -%}
            {%- do selects.append(kpi_fact_select(kpi, kpi_grains(kpi))) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if selects -%}
        {{ selects | join('\nunion all\n') }}
    {%- else -%}
        {{ kpi_empty_rows() }}
    {%- endif -%}
{%- endmacro %}

{#- The KPI columns of one row group, from the computation's aggregate expressions. -#}
{% macro kpi_measure_columns(computation) -%}
    {%- set numerator = kpi_expression(computation.numerator) -%}
    {%- set denominator = kpi_expression(computation.denominator) if computation.denominator else none -%}
    {%- if computation.value -%}
        {%- set value = kpi_expression(computation.value) -%}
    {%- elif denominator -%}
        {%- set value = '(' ~ numerator ~ ') / nullif(' ~ denominator ~ ', 0)' -%}
    {%- else -%}
        {%- set value = numerator -%}
    {%- endif -%}
    {%- set secondary = kpi_expression(computation.secondary_value) if computation.secondary_value else 'null' -%}
    cast({{ numerator }} as {{ kpi_number_type() }}) as numerator,
    cast({{ denominator or 'null' }} as {{ kpi_number_type() }}) as denominator,
    cast({{ value }} as {{ kpi_number_type() }}) as value,
    cast({{ secondary }} as {{ kpi_number_type() }}) as secondary_value
{%- endmacro %}

{#-
    One KPI at the given grains and all its slices in a single aggregation: the fact rows are
    repeated once per grain and slice (a cross join with the lists of both), then grouped.
-#}
{% macro kpi_fact_select(kpi, grains) -%}
    {%- set computation = kpi.computation -%}
    {%- set slices = kpi_slices(kpi) -%}
    select
        '{{ kpi.id }}' as kpi_id,
        grain,
        period_start,
        dimension,
        dimension_value,
        {{ kpi_measure_columns(computation) }}
    from (
        select
            {%- if computation.type == 'aggregate' %}
            kpi_grains.grain,
            case kpi_grains.grain
                {%- for grain in grains %}
                when '{{ grain }}' then cast({{ dbt.date_trunc(grain, 'facts.' ~ computation.date) }} as date)
                {%- endfor %}
            end as period_start,
            {%- else %}
            facts.kpi_grain as grain,
            facts.kpi_period_start as period_start,
            {%- endif %}
            kpi_dimensions.dimension,
            case kpi_dimensions.dimension
                {%- for dimension, column in slices.items() %}
                when '{{ dimension }}' then coalesce(cast(facts.{{ column }} as {{ dbt.type_string() }}), '(not set)')
                {%- endfor %}
                else 'all'
            end as dimension_value,
            facts.*
        from {{ kpi_fact_rows(kpi) }} as facts
        {%- if computation.type == 'aggregate' %}
        cross join ({{ kpi_literal_rows('grain', grains) }}) as kpi_grains
        {%- endif %}
        cross join ({{ kpi_literal_rows('dimension', ['all'] + (slices.keys() | list)) }}) as kpi_dimensions
    ) as kpi_fact_rows
    group by grain, period_start, dimension, dimension_value
{%- endmacro %}

{#-
    A flow whose numerator and denominator are plain sums or counts adds up over time: its
    longer grains are the sums of its days' numerators and denominators (still a ratio of
    sums), which costs one pass over the facts instead of one per grain. Distinct counts,
    medians and custom value expressions are computed from the facts at every grain.
-#}
{% macro kpi_rolls_up_from_days(kpi) -%}
    {%- set computation = kpi.computation -%}
    {%- if computation.type != 'aggregate' or computation.value or computation.secondary_value
        or 'day' not in kpi_grains(kpi) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- for expression in [computation.numerator, computation.denominator] if expression -%}
        {%- set aggregates = modules.re.findall('\\b(?:sum|count|avg|min|max|percentile_cont)\\(', expression) -%}
        {%- if aggregates | length != 1 or not modules.re.match('^(sum|count)\\((?!\\s*distinct\\b).*\\)$', expression.strip()) -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}

{% macro kpi_rolled_up_select(kpi) -%}
    {%- set grains = kpi_grains(kpi) -%}
    {%- set has_denominator = kpi.computation.get('denominator') is not none -%}
    select
        '{{ kpi.id }}' as kpi_id,
        kpi_grains.grain,
        case kpi_grains.grain
            {%- for grain in grains %}
            when '{{ grain }}' then cast({{ dbt.date_trunc(grain, 'kpi_days.period_start') }} as date)
            {%- endfor %}
        end as period_start,
        kpi_days.dimension,
        kpi_days.dimension_value,
        sum(kpi_days.numerator) as numerator,
        sum(kpi_days.denominator) as denominator,
        {%- if has_denominator %}
        sum(kpi_days.numerator) / nullif(sum(kpi_days.denominator), 0) as value,
        {%- else %}
        sum(kpi_days.numerator) as value,
        {%- endif %}
        cast(null as {{ kpi_number_type() }}) as secondary_value
    from ({{ kpi_fact_select(kpi, ['day']) }}) as kpi_days
    cross join ({{ kpi_literal_rows('grain', grains) }}) as kpi_grains
    group by 2, 3, 4, 5
{%- endmacro %}

{#-
    The fact rows a KPI counts. For a flow (aggregate), the rows with a date. For a stock
    (at_period_end), each row once per period whose last day falls in its validity, from
    valid_from (included) to valid_until (excluded; null = still valid) or for
    valid_for_days days, with the period as kpi_grain and kpi_period_start.
-#}
{% macro kpi_fact_rows(kpi) -%}
    {%- set computation = kpi.computation -%}
    {%- set where = kpi_expression(computation.where) if computation.where else 'true' -%}
    {%- if computation.type == 'aggregate' -%}
        (select * from {{ ref(computation.fact) }} where {{ computation.date }} is not null and ({{ where }}))
    {%- else -%}
        {%- set valid_from = 'valid_rows.' ~ computation.valid_from -%}
        {%- if computation.valid_for_days -%}
            {%- set valid_until = dbt.dateadd('day', computation.valid_for_days, valid_from) -%}
        {%- else -%}
            {%- set valid_until = 'valid_rows.' ~ computation.valid_until -%}
        {%- endif -%}
        (
            select
                periods.grain as kpi_grain,
                periods.period_start as kpi_period_start,
                valid_rows.*
            from {{ ref('int_kpi__periods') }} as periods
            inner join (select * from {{ ref(computation.fact) }} where {{ where }}) as valid_rows
                on
                    {{ valid_from }} <= periods.period_end
                    and ({{ valid_until }} is null or {{ valid_until }} > periods.period_end)
            where periods.has_started and periods.grain in ('{{ kpi_grains(kpi) | join("', '") }}')
        )
    {%- endif -%}
{%- endmacro %}

{#- A one-column relation of literal rows. -#}
{% macro kpi_literal_rows(column, values) -%}
    {%- for value in values -%}
        select '{{ value }}' as {{ column }}{% if not loop.last %} union all {% endif %}
    {%- endfor -%}
{%- endmacro %}

{#- The columns of a KPI row, in order. -#}
{% macro kpi_row_columns() -%}
    kpi_id, grain, period_start, dimension, dimension_value, numerator, denominator, value, secondary_value
{%- endmacro %}

{% macro kpi_empty_rows() -%}
    select
        cast(null as {{ dbt.type_string() }}) as kpi_id,
        cast(null as {{ dbt.type_string() }}) as grain,
        cast(null as date) as period_start,
        cast(null as {{ dbt.type_string() }}) as dimension,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        cast(null as {{ kpi_number_type() }}) as numerator,
        cast(null as {{ kpi_number_type() }}) as denominator,
        cast(null as {{ kpi_number_type() }}) as value,
        cast(null as {{ kpi_number_type() }}) as secondary_value
    where 1 = 0
{%- endmacro %}

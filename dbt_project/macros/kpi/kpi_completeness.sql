{#-
    Completeness of a KPI's periods (issue 17, item 5): a period is complete for a KPI once it
    ended before the as-of date and every source system of the KPI's catalogue entry
    (source_systems) landed on every day of it: models kpi/int_kpi__source_days
    (the days each source landed, from the load manifest) and kpi/kpi_values.
-#}

{#- Every source system of the catalogue, sorted (empty while dbt parses). -#}
{% macro kpi_all_source_systems() -%}
    {%- set sources = [] -%}
    {%- for kpi in kpi_catalogue() -%}
        {%- for source in kpi.source_systems -%}
            {%- if source not in sources -%}
                {%- do sources.append(source) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(sources | sort) }}
{%- endmacro %}

{#-
    A KPI made of KPIs reads what they read: its source_systems must name every source of its
    inputs, so that its periods are complete only when theirs are.
-#}
{% macro kpi_check_source_systems(kpi) -%}
    {%- if kpi.computation.type == 'combination' -%}
        {%- for input in kpi.computation.inputs.values() -%}
            {%- set input_kpi = kpi_by_id(input.split('@')[0]) -%}
            {%- for source in input_kpi.source_systems if source not in kpi.source_systems -%}
                {{ exceptions.raise_compiler_error(
                    "KPI '" ~ kpi.id ~ "' is made of '" ~ input_kpi.id ~ "', which reads the source system '"
                    ~ source ~ "': add it to its source_systems (models/kpi/kpi_catalogue.yml)") }}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

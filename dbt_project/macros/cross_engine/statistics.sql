{#-
    Planner statistics of a table just built, for the models that read it next. PostgreSQL
    gathers them only when autovacuum comes round: without them, it guesses a few hundred rows
    for a filter that keeps thousands and nests loops over the KPI inputs (about 200 s for
    int_kpi__combined_values on the sample, 0.9 s with them). DuckDB keeps its
    statistics as it writes.
-#}
{% macro refresh_statistics() -%}
    {{ return(adapter.dispatch('refresh_statistics', 'boussole')()) }}
{%- endmacro %}

{% macro default__refresh_statistics() -%}
{%- endmacro %}

{% macro postgres__refresh_statistics() -%}
    {%- if model.config.materialized in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}

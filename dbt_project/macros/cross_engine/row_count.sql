{#-
    The row count of a table or seed just built, in dbt's log as `row_count <n>` (a
    JinjaLogInfo event of the node): the Dagster step reports it on the model's materialisation
    while dbt still runs and holds the DuckDB file (orchestration/assets/transformation.py).
    Other engines report no count: their builds do not run in Dagster.
-#}
{% macro report_row_count() -%}
    {{ return(adapter.dispatch('report_row_count', 'boussole')()) }}
{%- endmacro %}

{% macro default__report_row_count() -%}
{%- endmacro %}

{% macro duckdb__report_row_count() -%}
    {%- if execute and model.config.materialized in ('table', 'incremental', 'seed') -%}
        {%- set counted = run_query('select count(*) from ' ~ this) -%}
        {%- do log('row_count ' ~ counted.columns[0].values()[0], info=True) -%}
    {%- endif -%}
{%- endmacro %}

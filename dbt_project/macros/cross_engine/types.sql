{#-
    A double-precision number: KPI figures and measures such as durations. dbt's type_float
    is one on most engines, but DuckDB's float is single precision.
-#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'boussole')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    {{ dbt.type_float() }}
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

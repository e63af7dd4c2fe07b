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

{#-
    The type of dbt.current_timestamp() (the run markers _transformed_at), for a null of it:
    dbt's type_timestamp has no time zone on DuckDB and PostgreSQL.
-#}
{% macro type_current_timestamp() -%}
    {{ return(adapter.dispatch('type_current_timestamp', 'boussole')()) }}
{%- endmacro %}

{% macro default__type_current_timestamp() -%}
    timestamp with time zone
{%- endmacro %}

{#-
    Reading the raw JSON records. Raw tables keep each vendor record whole (column `record`),
    so every engine needs the same two operations: read a text value at a path, and turn an
    array into rows. The default follows SQL:2016 (json_value); engines override below.
-#}

{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'boussole')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    json_value({{ column }}, '$.{{ path | join(".") }}')
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path | join(".") }}')
{%- endmacro %}

{% macro postgres__json_text(column, path) -%}
    ({{ column }}::jsonb #>> '{ {{- path | join(",") | replace("[", ",") | replace("]", "") -}} }')
{%- endmacro %}


{#- A FROM-clause fragment: one row per element of the array at `path`, as `alias`.value. -#}
{% macro json_array_rows(column, path, alias) -%}
    {{ return(adapter.dispatch('json_array_rows', 'boussole')(column, path, alias)) }}
{%- endmacro %}

{% macro default__json_array_rows(column, path, alias) -%}
    cross join lateral json_table(
        {{ column }}, '$.{{ path | join(".") }}[*]' columns (value varchar format json path '$')
    ) as {{ alias }}
{%- endmacro %}

{% macro duckdb__json_array_rows(column, path, alias) -%}
    cross join lateral unnest(json_extract({{ column }}, '$.{{ path | join(".") }}[*]'))
        as {{ alias }} (value)
{%- endmacro %}

{% macro postgres__json_array_rows(column, path, alias) -%}
    cross join lateral jsonb_array_elements({{ column }}::jsonb #> '{ {{- path | join(",") -}} }')
        as {{ alias }} (value)
{%- endmacro %}

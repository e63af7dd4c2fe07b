{#-
    GA4 event_params: a list of {key, value: {string_value | int_value | float_value |
    double_value}}. `ga4_event_params` prepares the list once per event; `ga4_event_param`
    reads one parameter from it as text ('string') or as an integer ('int').
    DuckDB parses the list into typed structs once and filters it (about ten times faster
    than unnesting and pivoting); PostgreSQL searches the jsonb array; the default reads it
    with SQL:2016 json_table.
-#}

{% macro ga4_event_params(record) -%}
    {{ return(adapter.dispatch('ga4_event_params', 'boussole')(record)) }}
{%- endmacro %}

{% macro default__ga4_event_params(record) -%}
    {{ record }}
{%- endmacro %}

{% macro postgres__ga4_event_params(record) -%}
    ({{ record }}::jsonb -> 'event_params')
{%- endmacro %}

{% macro duckdb__ga4_event_params(record) -%}
    from_json(
        json_extract({{ record }}, '$.event_params'),
        '[{"key": "VARCHAR", "value": {"string_value": "VARCHAR", "int_value": "BIGINT",
           "float_value": "DOUBLE", "double_value": "DOUBLE"}}]'
    )
{%- endmacro %}


{% macro ga4_event_param(params, key, kind) -%}
    {{ return(adapter.dispatch('ga4_event_param', 'boussole')(params, key, kind)) }}
{%- endmacro %}

{% macro default__ga4_event_param(params, key, kind) -%}
    (
        select
            {%- if kind == 'int' %}
            coalesce(p.int_value, cast(p.string_value as bigint))
            {%- else %}
            coalesce(p.string_value, cast(p.int_value as varchar), cast(p.double_value as varchar), cast(p.float_value as varchar))
            {%- endif %}
        from json_table(
            {{ params }}, '$.event_params[*]' columns (
                param_key varchar path '$.key',
                string_value varchar path '$.value.string_value',
                int_value bigint path '$.value.int_value',
                float_value double precision path '$.value.float_value',
                double_value double precision path '$.value.double_value'
            )
        ) as p
        where p.param_key = '{{ key }}'
        fetch first 1 rows only
    )
{%- endmacro %}

{% macro duckdb__ga4_event_param(params, key, kind) -%}
    {%- set value = 'list_filter(' ~ params ~ ", lambda p: p.key = '" ~ key ~ "')[1].value" -%}
    {%- if kind == 'int' -%}
        coalesce({{ value }}.int_value, try_cast({{ value }}.string_value as bigint))
    {%- else -%}
        coalesce(
            {{ value }}.string_value,
            cast({{ value }}.int_value as varchar),
            cast({{ value }}.double_value as varchar),
            cast({{ value }}.float_value as varchar)
        )
    {%- endif -%}
{%- endmacro %}

{% macro postgres__ga4_event_param(params, key, kind) -%}
    (
        select
            {%- if kind == 'int' %}
            coalesce(
                cast(p.param -> 'value' ->> 'int_value' as bigint),
                case
                    when p.param -> 'value' ->> 'string_value' ~ '^-?[0-9]+$'
                        then cast(p.param -> 'value' ->> 'string_value' as bigint)
                end
            )
            {%- else %}
            coalesce(
                p.param -> 'value' ->> 'string_value',
                p.param -> 'value' ->> 'int_value',
                p.param -> 'value' ->> 'double_value',
                p.param -> 'value' ->> 'float_value'
            )
            {%- endif %}
        from jsonb_array_elements({{ params }}) as p (param)
        where p.param ->> 'key' = '{{ key }}'
        limit 1
    )
{%- endmacro %}

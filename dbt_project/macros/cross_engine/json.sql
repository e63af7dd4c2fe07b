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


{#-
    Several values of one record, parsed once where the engine can: `json_fields` prepares
    the record for the given paths, `json_field_text` reads one of them from it as text, as
    json_text does. Worth it where each record is read many times (GA4 events: a dozen paths
    per event, millions of events); the default reads the record at each path.
-#}
{% macro json_fields(column, paths) -%}
    {{ return(adapter.dispatch('json_fields', 'boussole')(column, paths)) }}
{%- endmacro %}

{% macro default__json_fields(column, paths) -%}
    {{ column }}
{%- endmacro %}

{#- One json_transform into a struct of text values, nested as the paths are. -#}
{% macro duckdb__json_fields(column, paths) -%}
    {%- set structure = {} -%}
    {%- for path in paths -%}
        {%- set level = namespace(fields=structure) -%}
        {%- for key in path[:-1] -%}
            {%- if key not in level.fields -%}
                {%- do level.fields.update({key: {}}) -%}
            {%- endif -%}
            {%- set level.fields = level.fields[key] -%}
        {%- endfor -%}
        {%- do level.fields.update({path[-1]: 'VARCHAR'}) -%}
    {%- endfor -%}
    json_transform({{ column }}, '{{ tojson(structure) }}')
{%- endmacro %}

{% macro json_field_text(fields, path) -%}
    {{ return(adapter.dispatch('json_field_text', 'boussole')(fields, path)) }}
{%- endmacro %}

{% macro default__json_field_text(fields, path) -%}
    {{ json_text(fields, path) }}
{%- endmacro %}

{% macro duckdb__json_field_text(fields, path) -%}
    {{ fields }}.{{ path | join('.') }}
{%- endmacro %}


{#-
    The rows of a raw table with the named fields of each record as text columns (fields:
    name -> path), each record parsed once where the engine can (json_fields), and the
    delivery lineage. For the staging models that read many fields of each record.
-#}
{% macro json_record_fields(relation, fields) -%}
    select
        {%- for name, path in fields.items() %}
            {{ json_field_text('parsed', path) }} as {{ name }},
        {%- endfor %}
        _extract_date,
        _source_file,
        _record_number
    from (
        select
            {{ json_fields('record', fields.values() | list) }} as parsed,
            _extract_date,
            _source_file,
            _record_number
        from {{ relation }}
    ) as records
{%- endmacro %}

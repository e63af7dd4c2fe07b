{#- ISO-8601 week-numbering year, week number and day of week (1 = Monday) of a date. -#}
{% macro iso_week_parts(date_expression) -%}
    {{ return(adapter.dispatch('iso_week_parts', 'boussole')(date_expression)) }}
{%- endmacro %}

{% macro default__iso_week_parts(date_expression) -%}
    extract(isoyear from {{ date_expression }}) as iso_year,
    extract(week from {{ date_expression }}) as iso_week,
    extract(isodow from {{ date_expression }}) as iso_day_of_week
{%- endmacro %}

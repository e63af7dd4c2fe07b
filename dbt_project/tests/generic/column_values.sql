{#-
    The column rules of a model in one test: each column of `not_null` holds a value, each of
    `not_negative` is not below zero, each of `accepted_values` (column: [values]) holds one of
    its values or null (as dbt's accepted_values). One query instead of a test per column and
    rule: dbt's cost per test node is most of a small test's time, and a model has many.
    Fails with the rows that break a rule, each with `failed_rules` naming the rules it breaks.
-#}
{% test column_values(model, not_null=[], not_negative=[], accepted_values={}) %}
    {%- set rules = [] -%}
    {%- for column in not_null -%}
        {%- do rules.append((column ~ ' is null', column ~ ' is null')) -%}
    {%- endfor -%}
    {%- for column in not_negative -%}
        {%- do rules.append((column ~ ' < 0', column ~ ' is negative')) -%}
    {%- endfor -%}
    {%- for column, values in accepted_values.items() -%}
        {%- set listed = [] -%}
        {%- for value in values -%}
            {%- do listed.append(
                "'" ~ (value | replace("'", "''")) ~ "'" if value is string else value | string
            ) -%}
        {%- endfor -%}
        {%- do rules.append((
            column ~ ' not in (' ~ listed | join(', ') ~ ')',
            column ~ ' is not one of ' ~ values | join(', ') | replace("'", "''")
        )) -%}
    {%- endfor -%}
    select
        concat_ws(
            '; '
            {%- for condition, rule in rules %},
            case when {{ condition }} then '{{ rule }}' end
            {%- endfor %}
        ) as failed_rules,
        *
    {#- No alias: a scoped or filtered model is a subquery that has one. #}
    from {{ model }}
    where
        {%- for condition, _ in rules %}
        {{ 'or ' if not loop.first }}({{ condition }})
        {%- endfor %}
{% endtest %}

{#-
    The scope of a data test of an incremental model: every row, or the rows the build wrote.

    A test whose `where` config is the marker __written_by_this_run__ checks, when the build
    runs with the environment variable BOUSSOLE_TEST_SCOPE=this_run, only the rows the model's
    last write stamped (its latest _transformed_at: every row of one write shares the stamp of
    its statement). The pipeline sets it only after a successful build of the whole project
    with the same project files and settings (boussole/audit_scope.py): every row the build
    leaves alone passed these tests then. A uniqueness test (unique, unique_combination) keeps
    the whole table for the keys the build wrote, so that a duplicate of an older row is found
    (its key columns compared with =: a not_null test guards each of them).

    Without that variable (a first build, the build after a failed one, a changed project, a
    build by hand or on PostgreSQL), and always on a full refresh, the marker is dropped: every
    row is tested. Any other `where` is dbt's own filter. The variable is read only when the test
    runs (execute), never at parse time, so that changing it does not make dbt parse again.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where is none or (where | trim) != '__written_by_this_run__' -%}
        {{ return(dbt.default__get_where_subquery(relation)) }}
    {%- elif not execute or flags.FULL_REFRESH or env_var('BOUSSOLE_TEST_SCOPE', 'all') != 'this_run' -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set latest_write -%}
        (select max(latest._transformed_at) from {{ relation }} as latest)
    {%- endset -%}
    {%- set test = model.test_metadata -%}
    {%- if test.name == 'unique' -%}
        {%- set keys = [test.kwargs.column_name] -%}
    {%- elif test.name == 'unique_combination' -%}
        {%- set keys = test.kwargs.columns -%}
    {%- else -%}
        {%- set keys = [] -%}
    {%- endif -%}
    {%- if keys -%}
        {%- set scoped -%}
            (
                select scoped.*
                from {{ relation }} as scoped
                where exists (
                    select 1
                    from {{ relation }} as written
                    where
                        written._transformed_at = {{ latest_write }}
                        {%- for key in keys %}
                        and written.{{ key }} = scoped.{{ key }}
                        {%- endfor %}
                )
            ) dbt_subquery
        {%- endset -%}
    {%- else -%}
        {%- set scoped -%}
            (select * from {{ relation }} where _transformed_at = {{ latest_write }}) dbt_subquery
        {%- endset -%}
    {%- endif -%}
    {{ return(scoped) }}
{%- endmacro %}

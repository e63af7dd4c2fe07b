{#-
    The last run of an incremental model, as a scalar subquery: the latest _transformed_at
    it holds (the epoch when empty). Each incremental model stamps its rows with
    run_started_at, so the rows of an upstream model stamped after it are the new ones.
-#}
{% macro last_transformed_at() -%}
    (
        select coalesce(max(previous._transformed_at), cast('1970-01-01' as {{ dbt.type_timestamp() }}))
        from {{ this }} as previous
    )
{%- endmacro %}

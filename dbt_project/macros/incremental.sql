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

{#-
    first_date and last_date of the rows a run recomputes from the staged events: from the
    earliest and latest dates of their new rows and of the span stored for the same keys (null
    for a new key). The run's lookups between those dates read only their row groups.
-#}
{% macro lookup_date_span(new_first, new_last, stored_first, stored_last) -%}
    min(
        case when {{ stored_first }} < {{ new_first }} then {{ stored_first }} else {{ new_first }} end
    ) as first_date,
    max(
        case when {{ stored_last }} > {{ new_last }} then {{ stored_last }} else {{ new_last }} end
    ) as last_date
{%- endmacro %}

{#-
    The incremental strategy replace_kpi_periods, of the KPI models that recompute only the
    periods new data touches. The new rows hold every row of each recomputed period plus one
    marker row per period (kpi_id null). Every stored row of those periods (unique_key: grain,
    period_start) is deleted, also when a period has no row left, then the new rows but the
    markers are inserted.
-#}
{% macro get_incremental_replace_kpi_periods_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as stored
    where exists (
        select 1
        from {{ source }} as recomputed
        where
            {%- for key in arg_dict['unique_key'] %}
            recomputed.{{ key }} = stored.{{ key }}{{ ' and' if not loop.last }}
            {%- endfor %}
    );

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ source }}
    where kpi_id is not null
{%- endmacro %}

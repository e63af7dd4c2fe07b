-- The members of the web KPIs' distinct counts (users: the user_pseudo_id of each day and
-- slice), which let int_kpi__web update those counts from the members a run changed instead
-- of recounting every session of the year (see macros/kpi/kpi_distinct_members.sql).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_kpi_periods',
    unique_key=['grain', 'period_start'],
    on_schema_change='fail',
) }}

{{ kpi_distinct_member_rows() }}

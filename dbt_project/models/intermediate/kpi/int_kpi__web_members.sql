-- The members of the web family's distinct counts (users: the user_pseudo_id of each day and
-- slice), which let int_kpi__web update those counts from the members a run changed instead
-- of recounting every session of the year (see macros/kpi/kpi_distinct_members.sql).
-- depends_on: {{ ref('fct_web_sessions') }}
-- depends_on: {{ ref('int_kpi__periods') }}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_kpi_periods',
    unique_key=['grain', 'period_start'],
    on_schema_change='fail',
) }}

{{ kpi_distinct_member_rows(['web']) }}

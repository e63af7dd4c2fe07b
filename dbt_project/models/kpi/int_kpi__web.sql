-- The web KPIs: the flows of the catalogue over incremental facts (the web sessions and
-- transactions), one CTE per KPI. Incremental: the web facts are, and hold millions of rows,
-- so a run recomputes only the periods, at every grain, that hold a date of a session or
-- transaction changed since its last run (see kpi_fact_values), and updates its distinct
-- counts from the members that changed (int_kpi__web_members); the other KPIs read small
-- facts rebuilt in full (int_kpi__values_from_rebuilt_facts).
{{ config(
    materialized='incremental',
    incremental_strategy='replace_kpi_periods',
    unique_key=['grain', 'period_start'],
    on_schema_change='fail',
) }}

{{ kpi_fact_values(over_incremental_facts=true, distinct_members=ref('int_kpi__web_members')) }}

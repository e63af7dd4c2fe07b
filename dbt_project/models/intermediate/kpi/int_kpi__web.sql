-- The web KPIs of the catalogue computed from facts (kpi_catalogue.yml, category web).
-- Incremental: the web facts are, and hold millions of rows, so a run recomputes only the
-- periods, at every grain, that hold a date of a session or transaction changed since its
-- last run (see kpi_family_rows), and updates its distinct counts from the members that
-- changed (int_kpi__web_members); the other families read small current-state facts rebuilt
-- in full.
-- depends_on: {{ ref('fct_web_sessions') }}
-- depends_on: {{ ref('fct_web_transactions') }}
-- depends_on: {{ ref('int_kpi__periods') }}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_kpi_periods',
    unique_key=['grain', 'period_start'],
    on_schema_change='fail',
) }}

{{ kpi_family_rows(['web'], distinct_members=ref('int_kpi__web_members')) }}

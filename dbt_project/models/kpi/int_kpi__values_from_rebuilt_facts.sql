-- The KPIs computed from facts that are rebuilt in full each run (every category but the
-- flows over the incremental web facts, see int_kpi__web), one CTE per KPI, generated from
-- the catalogue (kpi_catalogue.yml).
{{ kpi_fact_values(over_incremental_facts=false) }}

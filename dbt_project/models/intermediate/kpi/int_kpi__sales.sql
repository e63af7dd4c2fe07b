-- The sales KPIs of the catalogue computed from facts (kpi_catalogue.yml, category sales).
-- depends_on: {{ ref('fct_deals') }}
-- depends_on: {{ ref('fct_activities') }}
-- depends_on: {{ ref('int_sales__deal_states') }}
-- depends_on: {{ ref('int_kpi__periods') }}
{{ kpi_family_rows(['sales']) }}

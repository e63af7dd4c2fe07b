-- The web KPIs of the catalogue computed from facts (kpi_catalogue.yml, category web).
-- depends_on: {{ ref('fct_web_sessions') }}
-- depends_on: {{ ref('fct_web_transactions') }}
-- depends_on: {{ ref('int_kpi__periods') }}
{{ kpi_family_rows('web') }}

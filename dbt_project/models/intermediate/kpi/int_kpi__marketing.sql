-- The marketing and finance KPIs of the catalogue computed from facts (kpi_catalogue.yml).
-- depends_on: {{ ref('dim_contact') }}
-- depends_on: {{ ref('fct_deals') }}
-- depends_on: {{ ref('int_sales__deal_states') }}
-- depends_on: {{ ref('fct_marketing_spend') }}
-- depends_on: {{ ref('fct_sales_costs') }}
-- depends_on: {{ ref('fct_email_sends') }}
-- depends_on: {{ ref('int_kpi__periods') }}
{{ kpi_family_rows(['marketing', 'finance']) }}

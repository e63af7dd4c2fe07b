-- The service KPIs of the catalogue computed from facts (kpi_catalogue.yml, category service).
-- depends_on: {{ ref('fct_tickets') }}
-- depends_on: {{ ref('fct_ticket_replies') }}
-- depends_on: {{ ref('fct_satisfaction_ratings') }}
-- depends_on: {{ ref('fct_survey_responses') }}
-- depends_on: {{ ref('int_support__ticket_states') }}
-- depends_on: {{ ref('int_kpi__periods') }}
{{ kpi_family_rows(['service']) }}

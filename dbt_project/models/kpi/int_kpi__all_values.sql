-- Every KPI row: those computed from facts and those combined from other KPIs
-- (computation type combination in kpi_catalogue.yml, e.g. average_deal_size = revenue / deals_won),
-- one CTE per combination.
{{ kpi_combination_rows(ref('int_kpi__values_from_facts')) }}
union all
select {{ kpi_row_columns() }} from {{ ref('int_kpi__values_from_facts') }}

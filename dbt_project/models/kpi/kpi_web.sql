-- The web KPIs side by side, one column per KPI, for BI tools that prefer no joins.
{{ kpi_wide_view('web') }}

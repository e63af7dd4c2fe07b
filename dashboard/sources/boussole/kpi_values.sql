-- Every published value with its catalogue entry (labels, unit, direction, category). The
-- day grain is kept for the goal hierarchy only (company, teams, owners): slices by day would
-- triple what the browser loads for little use on a dashboard.
select
    v.kpi_id,
    v.grain,
    v.period_start,
    v.period_end,
    v.dimension,
    v.dimension_value,
    v.value,
    v.previous_value,
    v.change,
    v.change / nullif(abs(v.previous_value), 0) as relative_change,
    v.target,
    v.pacing_target,
    v.attainment,
    v.status,
    v.is_complete_period,
    v.missing_source_days,
    v.trust_status,
    v.trust_reasons,
    v.trust_reasons_fr,
    c.label_fr,
    c.label_en,
    c.unit,
    c.currency,
    c.direction,
    c.category,
    c.tier
from kpi_values as v
inner join kpi_catalogue as c on v.kpi_id = c.kpi_id
where v.grain <> 'day' or v.dimension in ('all', 'team', 'owner')

-- The flagged periods only (warning or critical); a placeholder row (kpi_id '') keeps the
-- table when there is none (see kpi_restatements.sql).
select
    a.kpi_id,
    c.label_fr,
    c.label_en,
    a.grain,
    a.period_start,
    a.dimension,
    a.dimension_value,
    a.value,
    a.expected_value,
    a.lower_bound,
    a.upper_bound,
    a.score,
    a.severity,
    a.kind
from kpi_anomalies as a
inner join kpi_catalogue as c on a.kpi_id = c.kpi_id
where a.severity in ('warning', 'critical')
union all
select '', '', '', '', date '1970-01-01', '', '', 0, 0, 0, 0, 0, '', ''

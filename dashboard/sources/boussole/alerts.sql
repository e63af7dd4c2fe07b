-- A placeholder row (kind '') keeps the table when there is no alert (see kpi_restatements.sql).
select
    kind,
    severity,
    state,
    message,
    coalesce(kpi_id, '') as kpi_id,
    coalesce(grain, '') as grain,
    coalesce(cast(period_start as varchar), '') as period_start,
    coalesce(dimension, '') as dimension,
    coalesce(dimension_value, '') as dimension_value,
    coalesce(check_name, '') as check_name,
    coalesce(closed_reason, '') as closed_reason,
    cast(first_raised_at as timestamp) as first_raised_at_utc,
    cast(last_seen_at as timestamp) as last_seen_at_utc
from alerts
union all
select '', '', '', '', '', '', '', '', '', '', '', timestamp '1970-01-01', timestamp '1970-01-01'

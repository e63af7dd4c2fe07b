-- Evidence writes no file for an empty result, and a page cannot query a table that does not
-- exist: a placeholder row (kpi_id '') keeps the table, with its types, when there is none.
select
    kpi_id,
    tier,
    grain,
    period_start,
    dimension,
    dimension_value,
    old_value,
    new_value,
    tolerance,
    coalesce(causes, '') as causes,
    coalesce(accepted_by, '') as accepted_by,
    cast(detected_at as timestamp) as detected_at_utc,
    cast(first_published_at as timestamp) as first_published_at_utc
from kpi_restatements
union all
select
    '',
    '',
    '',
    date '1970-01-01',
    '',
    '',
    0,
    0,
    0,
    '',
    '',
    timestamp '1970-01-01',
    timestamp '1970-01-01'

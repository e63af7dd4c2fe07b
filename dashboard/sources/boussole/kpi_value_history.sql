-- Every version of the company's values as published (as-of history), oldest first.
select
    kpi_id,
    grain,
    period_start,
    value,
    target,
    status,
    published_as_of_date,
    cast(valid_from as timestamp) as valid_from_utc,
    cast(valid_to as timestamp) as valid_to_utc
from kpi_value_history
where dimension = 'all'

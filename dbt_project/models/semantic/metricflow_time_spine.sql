-- The days MetricFlow joins metrics to (offset windows, cumulative metrics): the calendar of
-- dim_date, one row per day.
select date_day
from {{ ref('dim_date') }}

-- The latest result of each expectation on each table; a placeholder row (check_name '')
-- keeps the table when there is none (see kpi_restatements.sql).
select
    check_name,
    suite,
    expectation,
    table_name,
    status,
    severity,
    coalesce(observed_value, '') as observed_value,
    coalesce(unexpected_count, 0) as unexpected_count,
    coalesce(rows_validated, 0) as rows_validated,
    coalesce(note, '') as note,
    coalesce(array_to_string(extract_dates, ', '), '') as extract_dates,
    cast(checked_at as timestamp) as checked_at_utc
from quality_results
qualify row_number() over (
    partition by suite, expectation, table_name order by checked_at desc
) = 1
union all
select '', '', '', '', '', '', '', 0, 0, '', '', timestamp '1970-01-01'

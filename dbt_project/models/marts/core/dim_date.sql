-- The calendar: one row per day between the calendar_start and calendar_end vars, with the
-- period each day belongs to at every KPI grain (ISO weeks start on Monday).
-- Built from a cross join of digits rather than a series function, so every engine runs it.
with digits as (
    {%- for digit in range(10) %}
        select {{ digit }} as digit
        {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
),

day_numbers as (
    select
        cast('{{ var("calendar_start") }}' as date) as calendar_start,
        thousands.digit * 1000 + hundreds.digit * 100 + tens.digit * 10 + units.digit as day_number
    from digits as thousands
    cross join digits as hundreds
    cross join digits as tens
    cross join digits as units
),

days as (
    -- dbt's dateadd renders on several lines on DuckDB
    -- noqa: disable=LT02
    select cast({{ dbt.dateadd('day', 'day_number', "cast('" ~ var('calendar_start') ~ "' as date)") }} as date)
        as date_day
    -- noqa: enable=LT02
    from day_numbers
)

select
    date_day,
    cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start,
    cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start,
    cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start,
    {{ iso_week_parts('date_day') }},
    extract(month from date_day) as month_number,
    extract(quarter from date_day) as quarter_number,
    extract(year from date_day) as calendar_year
from days
where date_day <= cast('{{ var("calendar_end") }}' as date)

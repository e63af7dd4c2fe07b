-- first_response_time_min: median calendar minutes to the first public agent reply, over
-- the tickets created in the period that have had a reply. The denominator is that count of
-- tickets; the mean is numerator / denominator.
{{ kpi_rows(
    kpi_id='first_response_time_min',
    relation=ref('fct_tickets'),
    date_column='created_date',
    numerator='sum(first_reply_minutes_calendar)',
    denominator='count(first_reply_minutes_calendar)',
    value='percentile_cont(0.5) within group (order by first_reply_minutes_calendar)',
    where='first_reply_minutes_calendar is not null',
    slices={'priority': 'priority', 'channel': 'channel'},
) }}

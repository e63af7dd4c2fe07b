-- sessions: GA4 sessions started in the period (user_pseudo_id + ga_session_id).
{{ kpi_rows(
    kpi_id='sessions',
    relation=ref('fct_web_sessions'),
    date_column='session_date',
    numerator='count(*)',
    slices={'source': 'source', 'medium': 'medium', 'device_category': 'device_category'},
) }}

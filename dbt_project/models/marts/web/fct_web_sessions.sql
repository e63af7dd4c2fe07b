-- One row per GA4 session (grain: user_pseudo_id + ga_session_id).
select
    session_key,
    user_pseudo_id,
    ga_session_id,
    session_started_at,
    session_ended_at,
    session_date,
    events,
    pageviews,
    source,
    medium,
    campaign,
    device_category,
    country
from {{ ref('int_web__sessions') }}

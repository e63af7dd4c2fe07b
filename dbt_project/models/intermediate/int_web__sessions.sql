-- GA4 sessions: a session is user_pseudo_id + ga_session_id. It starts at its first event
-- and is attributed to the reporting-time-zone date of that first event.
with session_events as (
    select
        {{ dbt.concat(["user_pseudo_id", "'-'", "cast(ga_session_id as varchar)"]) }} as session_key,
        user_pseudo_id,
        ga_session_id,
        event_at,
        event_name,
        source,
        medium,
        campaign,
        device_category,
        country,
        row_number() over (
            partition by user_pseudo_id, ga_session_id order by event_at, event_key
        ) as event_order
    from {{ ref('stg_web__events') }}
    where ga_session_id is not null
)

select
    session_key,
    max(user_pseudo_id) as user_pseudo_id,
    max(ga_session_id) as ga_session_id,
    min(event_at) as session_started_at,
    max(event_at) as session_ended_at,
    {{ reporting_date('min(event_at)') }} as session_date,
    count(*) as events,
    sum(case when event_name = 'page_view' then 1 else 0 end) as pageviews,
    max(case when event_order = 1 then coalesce(source, '(direct)') end) as source,
    max(case when event_order = 1 then coalesce(medium, '(none)') end) as medium,
    max(case when event_order = 1 then campaign end) as campaign,
    max(case when event_order = 1 then device_category end) as device_category,
    max(case when event_order = 1 then country end) as country
from session_events
group by session_key

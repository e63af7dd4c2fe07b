-- One row per page_view event of a session, with the engagement time of the page (the
-- engagement of the events that follow it until the next page view) and the session's
-- acquisition and device attributes.
-- Incremental: the page views of the sessions int_web__sessions recomputed since the last
-- run are recomputed from all the events of those sessions.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_key',
    on_schema_change='fail',
) }}

with sessions as (
    select
        session_key,
        channel_group,
        source,
        medium,
        campaign,
        device_category,
        country,
        session_date,
        session_end_date
    from {{ ref('int_web__sessions') }}
    {% if is_incremental() %}
        where _transformed_at > {{ last_transformed_at() }}
    {% endif %}
),

session_events as (
    select
        events.event_key,
        events.session_key,
        events.user_pseudo_id,
        events.event_name,
        events.event_at,
        events.event_date,
        events.page_path,
        events.page_title,
        events.engagement_time_msec,
        -- The page an event belongs to: the number of page views up to it. On equal
        -- timestamps a page view comes last, so the engagement sent on leaving a page stays
        -- with that page.
        sum(case when events.event_name = 'page_view' then 1 else 0 end) over (
            partition by events.session_key
            order by
                events.event_timestamp_us,
                case when events.event_name = 'page_view' then 1 else 0 end,
                events.event_key
            rows between unbounded preceding and current row
        ) as page_number
    from {{ ref('stg_web__events') }} as events
    inner join sessions on events.session_key = sessions.session_key
    {% if is_incremental() %}
        -- A session's events lie between its start and end dates: only their row groups are read.
        where
            events.event_date
            between (select min(sessions.session_date) from sessions) and (select max(sessions.session_end_date) from sessions)
    {% endif %}
),

page_engagement as (
    select
        session_key,
        page_number,
        coalesce(sum(engagement_time_msec), 0) as engagement_time_msec
    from session_events
    group by session_key, page_number
)

select
    page_views.event_key,
    page_views.session_key,
    page_views.user_pseudo_id,
    page_views.event_at as viewed_at,
    page_views.event_date as view_date,
    coalesce(page_views.page_path, '(not set)') as page_path,
    page_views.page_title,
    page_views.page_number = 1 as is_entrance,
    page_engagement.engagement_time_msec,
    sessions.channel_group,
    sessions.source,
    sessions.medium,
    sessions.campaign,
    sessions.device_category,
    sessions.country,
    {{ dbt.current_timestamp() }} as _transformed_at
from session_events as page_views
inner join page_engagement
    on page_views.session_key = page_engagement.session_key and page_views.page_number = page_engagement.page_number
inner join sessions on page_views.session_key = sessions.session_key
where page_views.event_name = 'page_view'

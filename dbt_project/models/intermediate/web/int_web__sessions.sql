-- GA4 sessions: a session is user_pseudo_id + ga_session_id. It starts at its first event
-- and is attributed to the reporting-time-zone date of that first event.
-- Incremental: a run recomputes, from all their events, the sessions that received events
-- since the last run, and is_new_user for every session of the users of those sessions
-- (an earlier session delivered late takes "new" from the one that had it); of the latter,
-- only the sessions whose is_new_user changed are rewritten.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='session_key',
    on_schema_change='fail',
) }}

{% set key_events = var('web_key_events', ['generate_lead', 'form_submit', 'sign_up', 'purchase']) %}
{% set key_event_names = "'" ~ key_events | join("', '") ~ "'" %}
{#- The columns of a session as computed from its events (all but is_new_user). -#}
{% set session_columns = [
    'session_key', 'user_pseudo_id', 'ga_session_id', 'user_id', 'user_first_touch_at',
    'session_started_at', 'session_ended_at', 'session_date', 'session_end_date', 'duration_s',
    'events', 'pageviews',
    'engagement_time_msec', 'has_key_event', 'landing_page', 'source', 'medium', 'campaign',
    'device_category', 'country',
] %}

with
{% if is_incremental() %}
    touched_sessions as (
        select
            events.session_key,
            min(events.event_date) as first_new_event_date,
            max(events.event_date) as last_new_event_date
        from {{ ref('stg_web__events') }} as events
        where
            events.session_key is not null
            and events._transformed_at > {{ last_transformed_at() }}
        group by events.session_key
    ),

    -- The dates that hold every event of the touched sessions: those of their new events, and
    -- the span of those already stored (a session's events lie between its start and end
    -- dates). Bounding the event lookup by them reads only the row groups of those dates.
    touched_dates as (
        select
            {{ lookup_date_span(
                'touched_sessions.first_new_event_date', 'touched_sessions.last_new_event_date',
                'stored.session_date', 'stored.session_end_date'
            ) }}
        from touched_sessions
        left join {{ this }} as stored on touched_sessions.session_key = stored.session_key
    ),
{% endif %}

session_events as (
    select
        events.*,
        row_number() over (
            partition by events.session_key order by events.event_timestamp_us, events.event_key
        ) as event_order,
        -- Rank among the session's events of the same name: the order of its page views.
        row_number() over (
            partition by events.session_key, events.event_name
            order by events.event_timestamp_us, events.event_key
        ) as same_name_order
    from {{ ref('stg_web__events') }} as events
    {% if is_incremental() %}
        inner join touched_sessions on events.session_key = touched_sessions.session_key
        where events.event_date between (select first_date from touched_dates) and (select last_date from touched_dates)
    {% else %}
        where events.session_key is not null
    {% endif %}
),

sessions as (
    select
        session_key,
        max(user_pseudo_id) as user_pseudo_id,
        max(ga_session_id) as ga_session_id,
        -- The CRM contact id, once the visitor identifies during the session.
        max(user_id) as user_id,
        min(user_first_touch_at) as user_first_touch_at,
        min(event_at) as session_started_at,
        max(event_at) as session_ended_at,
        {{ reporting_date('min(event_at)') }} as session_date,
        {{ reporting_date('max(event_at)') }} as session_end_date,
        cast(max(event_timestamp_us) - min(event_timestamp_us) as {{ type_double() }}) / 1000000 as duration_s,
        count(*) as events,
        sum(case when event_name = 'page_view' then 1 else 0 end) as pageviews,
        coalesce(sum(engagement_time_msec), 0) as engagement_time_msec,
        max(case when event_name in ({{ key_event_names }}) then 1 else 0 end) = 1 as has_key_event,
        max(case when event_name = 'page_view' and same_name_order = 1 then page_path end) as landing_page,
        max(case when event_order = 1 then coalesce(source, '(direct)') end) as source,
        max(case when event_order = 1 then coalesce(medium, '(none)') end) as medium,
        max(case when event_order = 1 then campaign end) as campaign,
        max(case when event_order = 1 then device_category end) as device_category,
        max(case when event_order = 1 then country end) as country
    from session_events
    group by session_key
),

user_sessions as (
    select
        {{ session_columns | join(', ') }},
        cast(null as {{ dbt.type_boolean() }}) as previous_is_new_user
    from sessions
    {% if is_incremental() %}
        -- The other sessions of the same users, unchanged but for is_new_user.
        union all
        select
            {{ session_columns | join(', ') }},
            previous.is_new_user as previous_is_new_user
        from {{ this }} as previous
        where
            previous.user_pseudo_id in (select sessions.user_pseudo_id from sessions)
            and previous.session_key not in (select sessions.session_key from sessions)
    {% endif %}
),

ordered as (
    select
        *,
        row_number() over (
            partition by user_pseudo_id order by session_started_at, session_key
        ) as user_session_order
    from user_sessions
),

new_users as (
    select
        *,
        -- First session of the user in the warehouse, unless GA4 first saw the user earlier (a
        -- visitor from before the first extract): the first touch then precedes it by more
        -- than the minute GA4 takes to stamp the first visit.
        (
            user_session_order = 1
            and (
                user_first_touch_at is null
                or user_first_touch_at > {{ dbt.dateadd('minute', -1, 'session_started_at') }}
            )
        ) as is_new_user
    from ordered
)

select
    session_key,
    user_pseudo_id,
    ga_session_id,
    user_id,
    user_first_touch_at,
    session_started_at,
    session_ended_at,
    session_date,
    session_end_date,
    duration_s,
    events,
    pageviews,
    engagement_time_msec,
    has_key_event,
    -- GA4's engaged session: over 10 seconds of engagement, a key event, or 2+ page views.
    (engagement_time_msec > 10000 or has_key_event or pageviews >= 2) as is_engaged,
    is_new_user,
    landing_page,
    source,
    medium,
    campaign,
    {{ default_channel_grouping('source', 'medium') }} as channel_group,
    device_category,
    country,
    {{ dbt.current_timestamp() }} as _transformed_at
from new_users
{% if is_incremental() %}
    -- A session carried over for its user is rewritten only when its is_new_user changed:
    -- the KPI layer recomputes the days of every rewritten session.
    where previous_is_new_user is null or previous_is_new_user <> is_new_user
{% endif %}

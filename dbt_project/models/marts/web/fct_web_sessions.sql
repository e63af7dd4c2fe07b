-- One row per GA4 session (grain: user_pseudo_id + ga_session_id).
-- Incremental: the sessions the last run of int_web__sessions recomputed replace their rows.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='session_key',
    on_schema_change='fail',
) }}

select
    session_key,
    user_pseudo_id,
    ga_session_id,
    user_id,
    session_started_at,
    session_ended_at,
    session_date,
    session_end_date,
    duration_s,
    events,
    pageviews,
    engagement_time_msec,
    is_engaged,
    has_key_event,
    is_new_user,
    landing_page,
    source,
    medium,
    campaign,
    channel_group,
    device_category,
    country,
    {{ dbt.current_timestamp() }} as _transformed_at
from {{ ref('int_web__sessions') }}
{% if is_incremental() %}
    where _transformed_at > {{ last_transformed_at() }}
{% endif %}

-- One row per GA4 event with the nested event_params flattened into typed columns.
-- A table, not a view: flattening is the costliest step of the web path, and the tests and
-- sessions that read it must not redo it.
{{ config(materialized='table') }}
-- The DuckDB parameter lookup compiles to lambdas (p.key), which RF03 takes for table references.
-- noqa: disable=RF03

-- GA4 has no event id: an event is identified by user, session, timestamp and name, which
-- also removes an event delivered twice in two extracts.
{% set params = {
    'ga_session_id': 'int',
    'ga_session_number': 'int',
    'page_location': 'string',
    'page_title': 'string',
    'page_referrer': 'string',
    'engagement_time_msec': 'int',
    'session_engaged': 'string',
    'source': 'string',
    'medium': 'string',
    'campaign': 'string',
} %}

with events as (
    select
        {{ json_text('record', ['user_pseudo_id']) }} as user_pseudo_id,
        {{ json_text('record', ['user_id']) }} as user_id,
        {{ json_text('record', ['event_name']) }} as event_name,
        cast({{ json_text('record', ['event_timestamp']) }} as bigint) as event_timestamp_us,
        {{ json_text('record', ['device', 'category']) }} as device_category,
        {{ json_text('record', ['geo', 'country']) }} as country,
        {{ json_text('record', ['traffic_source', 'source']) }} as first_user_source,
        {{ json_text('record', ['traffic_source', 'medium']) }} as first_user_medium,
        {{ json_text('record', ['ecommerce', 'transaction_id']) }} as transaction_id,
        cast({{ json_text('record', ['ecommerce', 'purchase_revenue']) }} as double) as purchase_revenue,
        {{ ga4_event_params('record') }} as event_params,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('web', 'events') }}
),

flattened as (
    select
        user_pseudo_id,
        user_id,
        event_name,
        {{ timestamp_from_epoch('event_timestamp_us', 1000000) }} as event_at,
        event_timestamp_us,
        device_category,
        country,
        first_user_source,
        first_user_medium,
        transaction_id,
        purchase_revenue,
        {%- for name, kind in params.items() %}
            {{ ga4_event_param('event_params', name, kind) }} as {{ name }},
        {%- endfor %}
        _extract_date,
        _source_file,
        _record_number
    from events
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by user_pseudo_id, ga_session_id, event_timestamp_us, event_name
            order by _extract_date, _source_file, _record_number
        ) as delivery_rank
    from flattened
)

select
    {{ dbt.hash(dbt.concat([
        "user_pseudo_id", "'|'", "coalesce(cast(ga_session_id as varchar), '')", "'|'",
        "cast(event_timestamp_us as varchar)", "'|'", "event_name"
    ])) }} as event_key,
    user_pseudo_id,
    user_id,
    event_name,
    event_at,
    {{ reporting_date('event_at') }} as event_date,
    device_category,
    country,
    first_user_source,
    first_user_medium,
    transaction_id,
    purchase_revenue,
    {%- for name in params %}
        {{ name }},
    {%- endfor %}
    _extract_date,
    _source_file
from deduplicated
where delivery_rank = 1

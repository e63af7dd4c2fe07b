-- One row per GA4 event with the nested event_params flattened into typed columns.
-- A table, not a view: flattening is the costliest step of the web path, and the tests and
-- sessions that read it must not redo it.
{{ config(materialized='table') }}

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
        record,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('web', 'events') }}
),

params as (
    select
        events._source_file,
        events._record_number,
        {{ json_text('param.value', ['key']) }} as param_key,
        coalesce(
            {{ json_text('param.value', ['value', 'string_value']) }},
            {{ json_text('param.value', ['value', 'int_value']) }},
            {{ json_text('param.value', ['value', 'double_value']) }},
            {{ json_text('param.value', ['value', 'float_value']) }}
        ) as param_text
    from events
    {{ json_array_rows('events.record', ['event_params'], 'param') }}
),

flat_params as (
    select
        _source_file,
        _record_number,
    {%- for name, kind in params.items() %}
        {%- if kind == 'int' %}
            max(case when param_key = '{{ name }}' then cast(param_text as bigint) end) as {{ name }}
        {%- else %}
            max(case when param_key = '{{ name }}' then param_text end) as {{ name }}
        {%- endif %}{{ "," if not loop.last }}
    {%- endfor %}
    from params
    group by _source_file, _record_number
),

flattened as (
    select
        events.user_pseudo_id,
        events.user_id,
        events.event_name,
        {{ timestamp_from_epoch('events.event_timestamp_us', 1000000) }} as event_at,
        events.event_timestamp_us,
        events.device_category,
        events.country,
        events.first_user_source,
        events.first_user_medium,
        events.transaction_id,
        events.purchase_revenue,
        {%- for name in params %}
            flat_params.{{ name }},
        {%- endfor %}
        events._extract_date,
        events._source_file,
        events._record_number,
        row_number() over (
            partition by
                events.user_pseudo_id,
                flat_params.ga_session_id,
                events.event_timestamp_us,
                events.event_name
            order by events._extract_date, events._source_file, events._record_number
        ) as delivery_rank
    from events
    left join flat_params
        on
            events._source_file = flat_params._source_file
            and events._record_number = flat_params._record_number
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
from flattened
where delivery_rank = 1

-- One row per GA4 event with the nested event_params flattened into typed columns.
-- Incremental: flattening is the costliest step of the web path, so a run reads only the raw
-- rows of files it has not processed yet. Those are found in the small load manifest (one row
-- per file), then read by extract date and checksum: an anti-join of the raw rows' checksums
-- with the staged rows' costs seconds at millions of events.
-- The unique key includes event_date, which the event key implies (it holds the timestamp): a
-- run then looks up the stored rows by date, in the few row groups of the new events' dates.
-- A file delivered again with other content replaces its earlier delivery (status replaced in
-- the manifest): the events staged from that delivery leave first, and the new ones come in as
-- new.
-- depends_on: {{ source('ingestion', 'load_manifest') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['event_date', 'event_key'],
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where _file_sha256 in (
        select replaced.file_sha256 from {{ source('ingestion', 'load_manifest') }} as replaced
        where replaced.source = 'web' and replaced.status = 'replaced'
    ){% endif %}",
) }}
-- The DuckDB parameter lookup compiles to lambdas (p.key), which RF03 takes for table references.
-- noqa: disable=RF03

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
    'currency': 'string',
} %}

{#- The values read from each record, all with one parse of the record (json_fields). -#}
{% set event_fields = {
    'user_pseudo_id': {'path': ['user_pseudo_id']},
    'user_id': {'path': ['user_id']},
    'event_name': {'path': ['event_name']},
    'event_timestamp_us': {'path': ['event_timestamp'], 'type': 'bigint'},
    'first_touch_us': {'path': ['user_first_touch_timestamp'], 'type': 'bigint'},
    'device_category': {'path': ['device', 'category']},
    'country': {'path': ['geo', 'country']},
    'first_user_source': {'path': ['traffic_source', 'source']},
    'first_user_medium': {'path': ['traffic_source', 'medium']},
    'transaction_id': {'path': ['ecommerce', 'transaction_id']},
    'purchase_revenue': {'path': ['ecommerce', 'purchase_revenue'], 'type': 'double precision'},
} %}

{% set columns = [
    'event_key', 'session_key', 'user_pseudo_id', 'user_id', 'event_name', 'event_timestamp_us',
    'event_at', 'event_date', 'user_first_touch_at', 'device_category', 'country',
    'first_user_source', 'first_user_medium', 'transaction_id', 'purchase_revenue',
] + params.keys() | list + [
    'page_path', '_extract_date', '_source_file', '_record_number', '_file_sha256',
] %}

with
{% if is_incremental() %}
    new_files as (
        select
            manifest.file_sha256,
            manifest.extract_date
        from {{ source('ingestion', 'load_manifest') }} as manifest
        where
            manifest.source = 'web'
            and manifest.object = 'events'
            and manifest.status = 'loaded'
            and manifest.file_sha256 not in (select distinct processed._file_sha256 from {{ this }} as processed)
    ),
{% endif %}

raw_events as (
    select
        {%- for name, field in event_fields.items() %}
            {%- set type = field.get('type', dbt.type_string()) %}
            cast({{ json_field_text('parsed', field.path) }} as {{ type }}) as {{ name }},
        {%- endfor %}
        {{ ga4_event_params('record') }} as event_params,
        _extract_date,
        _source_file,
        _record_number,
        _file_sha256
    from (
        select
            record,
            {{ json_fields('record', event_fields.values() | map(attribute='path') | list) }} as parsed,
            _extract_date,
            _source_file,
            _record_number,
            _file_sha256
        from {{ source('web', 'events') }}
        {% if is_incremental() %}
            where
                _extract_date in (select new_files.extract_date from new_files)
                and _file_sha256 in (select new_files.file_sha256 from new_files)
        {% endif %}
    ) as events
),

flattened as (
    select
        {%- for name, kind in params.items() %}
            {{ ga4_event_param('event_params', name, kind) }} as {{ name }},
        {%- endfor %}
        raw_events.*
    from raw_events
),

-- A URL without scheme, host, query string or fragment: https://host/a/b?x=1 -> /a/b.
locations as (
    select
        *,
        {{ dbt.split_part(dbt.split_part('page_location', "'?'", 1), "'#'", 1) }} as page_url,
        {{ dbt.position("'://'", 'page_location') }} as scheme_end
    from flattened
),

hosts as (
    select
        *,
        {{ dbt.right('page_url', dbt.length('page_url') ~ ' - scheme_end - 2') }} as host_and_path
    from locations
),

new_deliveries as (
    select
        -- GA4 has no event id: an event is identified by user, session, timestamp and name,
        -- which also finds an event delivered twice, in one extract or in two.
        {{ dbt.hash(dbt.concat([
            "user_pseudo_id", "'|'", "coalesce(cast(ga_session_id as " ~ dbt.type_string() ~ "), '')", "'|'",
            "cast(event_timestamp_us as " ~ dbt.type_string() ~ ")", "'|'", "event_name"
        ])) }} as event_key,
        case
            when ga_session_id is not null
                then {{ dbt.concat(["user_pseudo_id", "'-'", "cast(ga_session_id as " ~ dbt.type_string() ~ ")"]) }}
        end as session_key,
        user_pseudo_id,
        user_id,
        event_name,
        event_timestamp_us,
        {{ timestamp_from_epoch('event_timestamp_us', 1000000) }} as event_at,
        {{ reporting_date(timestamp_from_epoch('event_timestamp_us', 1000000)) }} as event_date,
        {{ timestamp_from_epoch('first_touch_us', 1000000) }} as user_first_touch_at,
        device_category,
        country,
        first_user_source,
        first_user_medium,
        transaction_id,
        purchase_revenue,
        {%- for name in params %}
            {{ name }},
        {%- endfor %}
        case
            when page_location is null then null
            when scheme_end = 0 then page_url
            when {{ dbt.position("'/'", 'host_and_path') }} = 0 then '/'
            else {{ dbt.right('host_and_path', dbt.length('host_and_path') ~ ' - '
                ~ dbt.position("'/'", 'host_and_path') ~ ' + 1') }}
        end as page_path,
        _extract_date,
        _source_file,
        _record_number,
        _file_sha256
    from hosts
),

-- An event delivered more than once keeps its earliest delivery. Only the duplicated keys are
-- ranked: a window over every event would also shuffle the table out of delivery order, which
-- keeps it clustered by date (the date-bounded lookups of the downstream models rely on it).
duplicated_keys as (
    select event_key
    from new_deliveries
    group by event_key
    having count(*) > 1
),

later_deliveries as (
    select
        ranked.event_key,
        ranked._source_file,
        ranked._record_number,
        ranked._file_sha256
    from (
        select
            new_deliveries.event_key,
            new_deliveries._source_file,
            new_deliveries._record_number,
            new_deliveries._file_sha256,
            row_number() over (
                partition by new_deliveries.event_key
                order by
                    new_deliveries._extract_date,
                    new_deliveries._source_file,
                    new_deliveries._record_number,
                    new_deliveries._file_sha256
            ) as delivery_rank
        from new_deliveries
        inner join duplicated_keys on new_deliveries.event_key = duplicated_keys.event_key
    ) as ranked
    where ranked.delivery_rank > 1
),

first_deliveries as (
    select new_deliveries.*
    from new_deliveries
    left join later_deliveries
        on
            new_deliveries.event_key = later_deliveries.event_key
            and new_deliveries._source_file = later_deliveries._source_file
            and new_deliveries._record_number = later_deliveries._record_number
            and new_deliveries._file_sha256 = later_deliveries._file_sha256
    where later_deliveries.event_key is null
)

select
    first_deliveries.{{ columns | join(',\n    first_deliveries.') }},
    {{ dbt.current_timestamp() }} as _transformed_at
from first_deliveries
{% if is_incremental() %}
    left join {{ this }} as kept
        on first_deliveries.event_date = kept.event_date and first_deliveries.event_key = kept.event_key
    -- The earliest delivery of an event wins, as in a full build: a new delivery replaces the
    -- kept one only when delivered before it (a backfill of an older extract).
    where
        kept.event_key is null
        or first_deliveries._extract_date < kept._extract_date
        or (first_deliveries._extract_date = kept._extract_date and first_deliveries._source_file < kept._source_file)
        or (
            first_deliveries._extract_date = kept._extract_date
            and first_deliveries._source_file = kept._source_file
            and first_deliveries._record_number < kept._record_number
        )
{% endif %}

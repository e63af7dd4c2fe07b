-- One row per source system of the catalogue and day on which its KPIs expect a delivery,
-- from the source's first delivery to the as-of date, read from the load manifest alone (one
-- row per landed file, never the raw rows). A source has landed on a day when a file of it
-- for that extract date was read and its content is in raw: loaded, or a duplicate of a file
-- already loaded (the same empty export two days running). Any object will do: incremental
-- objects deliver nothing on a day without changes, and some objects are optional or come
-- once (pipelines.json); the volume of each object is for the quality checks to judge. The
-- days before a source's first delivery (a file read, even one that failed) are what that
-- delivery brought, a first export holding the history: they are not expected. A source never
-- delivered is expected from the first delivery of any source.
{%- set sources = kpi_all_source_systems() %}

with as_of as (
    select {{ kpi_as_of_date() }} as as_of_date
),

source_systems as (
    {%- if sources %}
        {{ kpi_literal_rows('source', sources) }}
    {%- else %}
        -- dbt is parsing: the catalogue is read from the graph at run time.
        select cast(null as {{ dbt.type_string() }}) as source
    {%- endif %}
),

-- A file delivered again with other content is 'replaced' by its new delivery's row.
manifest_days as (
    select
        source,
        extract_date,
        sum(case when status in ('loaded', 'duplicate') then 1 else 0 end) as files_landed,
        sum(case when status = 'failed' then 1 else 0 end) as files_failed
    from {{ source('ingestion', 'load_manifest') }}
    where status in ('loaded', 'duplicate', 'failed')
    group by source, extract_date
),

first_days as (
    select
        source_systems.source,
        coalesce(
            min(manifest_days.extract_date),
            (select min(any_source.extract_date) from manifest_days as any_source)
        ) as first_day
    from source_systems
    left join manifest_days
        on source_systems.source = manifest_days.source
    group by source_systems.source
)

select
    first_days.source,
    calendar.date_day,
    coalesce(manifest_days.files_landed, 0) as files_landed,
    coalesce(manifest_days.files_failed, 0) as files_failed,
    coalesce(manifest_days.files_landed, 0) > 0 as has_landed
from first_days
cross join as_of
inner join {{ ref('dim_date') }} as calendar
    on first_days.first_day <= calendar.date_day and as_of.as_of_date >= calendar.date_day
left join manifest_days
    on first_days.source = manifest_days.source and calendar.date_day = manifest_days.extract_date

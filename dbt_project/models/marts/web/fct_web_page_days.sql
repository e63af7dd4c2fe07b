-- Page-level table: one row per page path and view date (the brief's "time on page" is the
-- average engagement time per page view).
-- Incremental: the page-days holding a page view recomputed since the last run are
-- aggregated again from all their page views.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['page_path', 'view_date'],
    on_schema_change='fail',
) }}

with page_views as (
    select
        page_views.page_path,
        page_views.view_date,
        page_views.is_entrance,
        page_views.engagement_time_msec
    from {{ ref('fct_page_views') }} as page_views
    {% if is_incremental() %}
        inner join (
            select distinct
                changed.page_path,
                changed.view_date
            from {{ ref('fct_page_views') }} as changed
            where changed._transformed_at > {{ last_transformed_at() }}
        ) as touched
            on page_views.page_path = touched.page_path and page_views.view_date = touched.view_date
    {% endif %}
)

select
    page_path,
    view_date,
    count(*) as pageviews,
    sum(case when is_entrance then 1 else 0 end) as entrances,
    sum(engagement_time_msec) as engagement_time_msec,
    cast(sum(engagement_time_msec) as {{ type_double() }}) / 1000 / count(*) as avg_engagement_time_s,
    {{ dbt.current_timestamp() }} as _transformed_at
from page_views
group by page_path, view_date

-- The KPI mart in long form: one row per KPI, grain, period and slice, with the previous
-- period's value, the target and the status. Company-wide rows have dimension = 'all' and
-- dimension_value = 'all'.

with kpi_rows as (
    select * from {{ ref('int_kpi__all_values') }}
),

periods as (
    select * from {{ ref('int_kpi__periods') }}
),

-- Completeness: a period is complete for a KPI once it ended before the as-of date and every
-- source system the KPI depends on (its catalogue entry's source_systems, which name those of
-- its inputs for a combination) landed on each of its days (int_kpi__source_days). The source
-- days missing so far, up to the as-of date, are named even while the period is in progress.
missing_days as (
    select
        source_days.source,
        calendar.date_day,
        calendar.week_start,
        calendar.month_start,
        calendar.quarter_start,
        calendar.year_start
    from {{ ref('int_kpi__source_days') }} as source_days
    inner join {{ ref('dim_date') }} as calendar
        on source_days.date_day = calendar.date_day
    where not source_days.has_landed
),

-- Each source's missing days in the period that holds them, at every grain.
source_gaps as (
    {%- for grain in var('kpi_grains') %}
        {%- set day_period = 'date_day' if grain == 'day' else grain ~ '_start' %}
        select
            '{{ grain }}' as grain,
            {{ day_period }} as period_start,
            source,
            count(*) as missing_days,
            min(date_day) as first_missing_day
        from missing_days
        group by {{ day_period }}, source
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- e.g. 'crm 1 day (first 2026-01-20); web 3 days (first 2026-02-14)'
kpi_gaps as (
    select
        catalogue.kpi_id,
        source_gaps.grain,
        source_gaps.period_start,
        {{ dbt.listagg(
            dbt.concat([
                'source_gaps.source',
                "' '",
                dbt.cast('source_gaps.missing_days', dbt.type_string()),
                "case when source_gaps.missing_days = 1 then ' day (first ' else ' days (first ' end",
                dbt.cast('source_gaps.first_missing_day', dbt.type_string()),
                "')'",
            ]),
            "'; '",
            'order by source_gaps.source',
        ) }} as missing_source_days
    from {{ ref('kpi_catalogue') }} as catalogue
    inner join source_gaps
        on {{ dbt.position(
            dbt.concat(["','", 'source_gaps.source', "','"]),
            dbt.concat(["','", 'catalogue.source_systems', "','"]),
        ) }} > 0
    group by catalogue.kpi_id, source_gaps.grain, source_gaps.period_start
),

-- A target's scope is a slice: company = ('all', 'all'), team = ('team', name), owner = ('owner', id).
targets as (
    select
        kpi_id,
        grain,
        period_start,
        case when scope = 'company' then 'all' else scope end as dimension,
        case when scope = 'company' then 'all' else scope_value end as dimension_value,
        target,
        warning_attainment,
        critical_attainment,
        baseline
    from {{ ref('kpi_targets') }}
),

compared as (
    select
        kpi_rows.*,
        periods.period_end,
        periods.days_in_period,
        periods.days_elapsed,
        -- The period's last day is before the as-of date.
        periods.is_complete_period as has_ended,
        periods.is_complete_period and gaps.kpi_id is null as is_complete_period,
        gaps.missing_source_days,
        previous_rows.value as previous_value
    from kpi_rows
    inner join periods
        on kpi_rows.grain = periods.grain and kpi_rows.period_start = periods.period_start
    left join kpi_gaps as gaps
        on
            kpi_rows.kpi_id = gaps.kpi_id
            and kpi_rows.grain = gaps.grain
            and kpi_rows.period_start = gaps.period_start
    left join kpi_rows as previous_rows
        on
            kpi_rows.kpi_id = previous_rows.kpi_id
            and kpi_rows.grain = previous_rows.grain
            and periods.previous_period_start = previous_rows.period_start
            and kpi_rows.dimension = previous_rows.dimension
            and kpi_rows.dimension_value = previous_rows.dimension_value
),

-- A target for the period itself wins over a standing target (period_start left empty).
targeted as (
    select
        compared.*,
        catalogue.direction,
        catalogue.is_additive,
        coalesce(period_targets.target, standing_targets.target) as target,
        coalesce(period_targets.warning_attainment, standing_targets.warning_attainment, 1.0)
            as warning_attainment,
        coalesce(period_targets.critical_attainment, standing_targets.critical_attainment, 0.9)
            as critical_attainment,
        coalesce(period_targets.baseline, standing_targets.baseline) as baseline
    from compared
    inner join {{ ref('kpi_catalogue') }} as catalogue
        on compared.kpi_id = catalogue.kpi_id
    left join targets as period_targets
        on
            compared.kpi_id = period_targets.kpi_id
            and compared.grain = period_targets.grain
            and compared.period_start = period_targets.period_start
            and compared.dimension = period_targets.dimension
            and compared.dimension_value = period_targets.dimension_value
    left join targets as standing_targets
        on
            compared.kpi_id = standing_targets.kpi_id
            and compared.grain = standing_targets.grain
            and standing_targets.period_start is null
            and compared.dimension = standing_targets.dimension
            and compared.dimension_value = standing_targets.dimension_value
),

-- Pacing: while a period is in progress, a sum or count is held against the share of its
-- target that the elapsed days pro-rate; a ratio or average against the whole target.
paced as (
    select
        *,
        case
            when is_additive and not has_ended then target * days_elapsed / days_in_period
            else target
        end as pacing_target
    from targeted
),

attained as (
    select
        *,
        case
            when direction = 'higher_is_better' then value / nullif(pacing_target, 0)
            else pacing_target / nullif(value, 0)
        end as attainment
    from paced
)

select
    kpi_id,
    grain,
    period_start,
    period_end,
    dimension,
    dimension_value,
    numerator,
    denominator,
    value,
    secondary_value,
    previous_value,
    value - previous_value as change,
    target,
    pacing_target,
    baseline,
    attainment,
    case
        when target is null or value is null then null
        -- Nothing at all of a lower-is-better KPI (no spend, no backlog) meets any target.
        when direction = 'lower_is_better' and value <= 0 then 'on_track'
        when attainment >= warning_attainment then 'on_track'
        when attainment >= critical_attainment then 'at_risk'
        else 'off_track'
    end as status,
    is_complete_period,
    missing_source_days
from attained

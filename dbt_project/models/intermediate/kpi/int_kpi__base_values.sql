-- The KPIs computed from facts, every family together. An additive KPI (a sum or count)
-- also gets a zero company-wide row for each period without data, from its first period
-- to the as-of date, so that previous-period comparisons never skip an empty period.
{%- set additive_ids = kpi_catalogue() | selectattr('additive') | selectattr('computation.type', 'ne', 'combination')
    | map(attribute='id') | list %}

with computed as (
    {%- for family in ['sales', 'marketing', 'web', 'service'] %}
        select * from {{ ref('int_kpi__' ~ family) }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

first_periods as (
    select
        kpi_id,
        grain,
        min(period_start) as first_period_start
    from computed
    where
        dimension = 'all'
        and kpi_id in ('{{ additive_ids | join("', '") }}')
    group by kpi_id, grain
),

empty_periods as (
    select
        first_periods.kpi_id,
        periods.grain,
        periods.period_start
    from first_periods
    inner join {{ ref('int_kpi__periods') }} as periods
        on
            first_periods.grain = periods.grain
            and first_periods.first_period_start <= periods.period_start
    left join computed
        on
            first_periods.kpi_id = computed.kpi_id
            and periods.grain = computed.grain
            and periods.period_start = computed.period_start
            and computed.dimension = 'all'
    where computed.kpi_id is null
)

select * from computed
union all
select
    kpi_id,
    grain,
    period_start,
    'all' as dimension,
    'all' as dimension_value,
    cast(0 as {{ kpi_number_type() }}) as numerator,
    cast(null as {{ kpi_number_type() }}) as denominator,
    cast(0 as {{ kpi_number_type() }}) as value,
    cast(null as {{ kpi_number_type() }}) as secondary_value
from empty_periods

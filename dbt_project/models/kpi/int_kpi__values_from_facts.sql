-- The KPIs computed from facts, every category together. An additive KPI (a sum or count)
-- also gets a zero company-wide row for each period without data, from its first period
-- to the as-of date, so that previous-period comparisons never skip an empty period.

with computed as (
    select {{ kpi_row_columns() }} from {{ ref('int_kpi__values_from_rebuilt_facts') }}
    union all
    select {{ kpi_row_columns() }} from {{ ref('int_kpi__web') }}
),

first_periods as (
    select
        computed.kpi_id,
        computed.grain,
        min(computed.period_start) as first_period_start
    from computed
    inner join {{ ref('kpi_catalogue') }} as catalogue
        on computed.kpi_id = catalogue.kpi_id
    where
        computed.dimension = 'all'
        and catalogue.is_additive
        and catalogue.computation_type <> 'combination'
    group by computed.kpi_id, computed.grain
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
            and periods.has_started
    left join computed
        on
            first_periods.kpi_id = computed.kpi_id
            and periods.grain = computed.grain
            and periods.period_start = computed.period_start
            and computed.dimension = 'all'
    where computed.kpi_id is null
)

select {{ kpi_row_columns() }} from computed
union all
select
    kpi_id,
    grain,
    period_start,
    'all' as dimension,
    'all' as dimension_value,
    cast(0 as {{ type_double() }}) as numerator,
    cast(null as {{ type_double() }}) as denominator,
    cast(0 as {{ type_double() }}) as value,
    cast(null as {{ type_double() }}) as secondary_value
from empty_periods

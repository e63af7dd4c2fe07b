{#-
    Exact distinct counts (users: count(distinct user_pseudo_id)) do not add up over time, so
    a run that adds one day would recount the whole year, quarter and month around it from
    the facts. Instead, an incremental model can keep the members of its distinct counts by
    day and slice (kpi_distinct_member_rows), each row telling whether the last run added,
    kept or removed it. A changed period's count is then its stored count, minus the members
    whose membership changed as they were counted before, plus the same members as they are
    now (kpi_distinct_delta_select): only the rows of the members that changed are read.
-#}

{#-
    The members of the distinct counts (rollup distinct_members) of the flows over
    incremental facts, by day and slice: kpi_id, grain ('day'), period_start, dimension,
    dimension_value, member, membership_change (added, kept or removed by the run that wrote
    the row), _previous_run_at (the model's last run before it; null for a full build) and
    _transformed_at. Incremental
    (replace_kpi_periods): a run rewrites the days holding a changed fact row, comparing
    their members with the stored ones.
-#}
{% macro kpi_distinct_member_rows() -%}
    {%- do kpi_fact_refs(over_incremental_facts=true) -%}
    {%- set kpis = [] -%}
    {%- for kpi in kpi_fact_kpis(over_incremental_facts=true) if kpi_rollup(kpi) == 'distinct_members' -%}
        {%- do kpis.append(kpi) -%}
    {%- endfor -%}
    {%- set changed_only = is_incremental() -%}
    {%- set member_columns = ['kpi_id', 'period_start', 'dimension', 'dimension_value', 'member'] -%}
    with
    {%- if changed_only %}
    kpi_changed_periods as (
        {{ kpi_changed_periods(kpis, only_grain='day') }}
    ),

    stored_members as (
        select {{ member_columns | join(', ') }}
        from {{ this }} as stored
        where
            stored.membership_change <> 'removed'
            and stored.period_start in (select kpi_changed_periods.period_start from kpi_changed_periods)
    ),
    {%- endif %}

    current_members as (
        {%- for kpi in kpis %}
        {%- set slices = kpi_slices(kpi) %}
        select distinct
            '{{ kpi.id }}' as kpi_id,
            facts.{{ kpi.computation.date }} as period_start,
            kpi_dimensions.dimension,
            {{ kpi_dimension_value(slices, 'facts') | indent(8) }} as dimension_value,
            cast(facts.{{ kpi.computation.members }} as {{ dbt.type_string() }}) as member
        from {{ kpi_fact_rows(kpi) }} as facts
        {%- if changed_only %}
        inner join kpi_changed_periods on facts.{{ kpi.computation.date }} = kpi_changed_periods.period_start
        {%- endif %}
        cross join ({{ kpi_dimensions(slices) }}) as kpi_dimensions
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
        {%- if not kpis %}
        select
            cast(null as {{ dbt.type_string() }}) as kpi_id,
            cast(null as date) as period_start,
            cast(null as {{ dbt.type_string() }}) as dimension,
            cast(null as {{ dbt.type_string() }}) as dimension_value,
            cast(null as {{ dbt.type_string() }}) as member
        where 1 = 0
        {%- endif %}
    )

    {%- if changed_only %}

    select
        coalesce(current_members.kpi_id, stored_members.kpi_id) as kpi_id,
        'day' as grain,
        coalesce(current_members.period_start, stored_members.period_start) as period_start,
        coalesce(current_members.dimension, stored_members.dimension) as dimension,
        coalesce(current_members.dimension_value, stored_members.dimension_value) as dimension_value,
        coalesce(current_members.member, stored_members.member) as member,
        case
            when stored_members.member is null then 'added'
            when current_members.member is null then 'removed'
            else 'kept'
        end as membership_change,
        (select max(previous._transformed_at) from {{ this }} as previous) as _previous_run_at,
        {{ dbt.current_timestamp() }} as _transformed_at
    from current_members
    full outer join stored_members
        on
            {%- for column in member_columns %}
            current_members.{{ column }} = stored_members.{{ column }}{{ ' and' if not loop.last }}
            {%- endfor %}
    union all
    {{ kpi_period_markers([
        ('member', dbt.type_string()), ('membership_change', dbt.type_string()),
        ('_previous_run_at', type_current_timestamp()),
    ]) }}
    {%- else %}

    select
        kpi_id,
        'day' as grain,
        period_start,
        dimension,
        dimension_value,
        member,
        'added' as membership_change,
        cast(null as {{ type_current_timestamp() }}) as _previous_run_at,
        {{ dbt.current_timestamp() }} as _transformed_at
    from current_members
    {%- endif %}
{%- endmacro %}

{#-
    Whether the members model ran in step with the calling model: every member row written
    since the caller's last run was written by a members run that compared with the state
    the caller counted (its previous run is not after the caller's last run). Otherwise (a
    members run whose KPIs failed, or a full build of the members alone) the caller counts
    its changed periods from the facts.
-#}
{% macro kpi_distinct_members_in_step(members) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set since_last_run = run_query(
        'select count(case when members._previous_run_at is null or members._previous_run_at > '
        ~ last_transformed_at() ~ ' then 1 end) as out_of_step, count(distinct case when '
        ~ "members.membership_change <> 'kept' then members.member end) as changed_members from "
        ~ members ~ ' as members where members._transformed_at > ' ~ last_transformed_at()
    ).rows[0] -%}
    {%- if since_last_run[0] > 0 -%}
        {{ log(this.identifier ~ ': distinct counts recounted from the facts (' ~ since_last_run[0] ~ ' rows of '
            ~ members.identifier ~ ' were written out of step with it)', info=true) }}
    {%- else -%}
        {{ log(this.identifier ~ ': distinct counts updated from ' ~ since_last_run[1] ~ ' changed members', info=true) }}
    {%- endif -%}
    {{ return(since_last_run[0] == 0) }}
{%- endmacro %}

{#-
    A distinct count at every changed period of its grains: the stored count, minus the
    changed members as counted at the caller's last run, plus the same members now. A member
    row counted at that run is one written before it and not removed, or written since as
    kept or removed; now, every row not removed.
-#}
{% macro kpi_distinct_delta_select(kpi, members) -%}
    {%- set last_run = last_transformed_at() -%}
    {%- set count = 'coalesce(stored.numerator, 0) - coalesce(changed.counted_before, 0) + coalesce(changed.counted_now, 0)' -%}
    select
        '{{ kpi.id }}' as kpi_id,
        coalesce(stored.grain, changed.grain) as grain,
        coalesce(stored.period_start, changed.period_start) as period_start,
        coalesce(stored.dimension, changed.dimension) as dimension,
        coalesce(stored.dimension_value, changed.dimension_value) as dimension_value,
        cast({{ count }} as {{ type_double() }}) as numerator,
        cast(null as {{ type_double() }}) as denominator,
        cast({{ count }} as {{ type_double() }}) as value,
        cast(null as {{ type_double() }}) as secondary_value
    from (
        select stored.grain, stored.period_start, stored.dimension, stored.dimension_value, stored.numerator
        from {{ this }} as stored
        where
            stored.kpi_id = '{{ kpi.id }}'
            and stored.period_start >= (select min(kpi_changed_periods.period_start) from kpi_changed_periods)
            and {{ kpi_in_changed_periods('stored') }}
    ) as stored
    full outer join (
        select
            kpi_changed_periods.grain,
            kpi_changed_periods.period_start,
            members.dimension,
            members.dimension_value,
            count(distinct case
                when members._transformed_at > {{ last_run }} and members.membership_change <> 'added' then members.member
                when members._transformed_at <= {{ last_run }} and members.membership_change <> 'removed' then members.member
            end) as counted_before,
            count(distinct case when members.membership_change <> 'removed' then members.member end) as counted_now
        from {{ members }} as members
        inner join (
            select distinct changed_members.member
            from {{ members }} as changed_members
            where
                changed_members.kpi_id = '{{ kpi.id }}'
                and changed_members._transformed_at > {{ last_run }}
                and changed_members.membership_change <> 'kept'
        ) as changed_members
            on members.member = changed_members.member
        inner join kpi_changed_periods
            on
                members.period_start >= kpi_changed_periods.period_start
                and members.period_start <= kpi_changed_periods.period_end
        where members.kpi_id = '{{ kpi.id }}' and kpi_changed_periods.grain in ('{{ kpi_grains(kpi) | join("', '") }}')
        group by
            kpi_changed_periods.grain,
            kpi_changed_periods.period_start,
            members.dimension,
            members.dimension_value
    ) as changed
        on
            stored.grain = changed.grain
            and stored.period_start = changed.period_start
            and stored.dimension = changed.dimension
            and stored.dimension_value = changed.dimension_value
    -- A slice with no member left has no row, as in a full build.
    where {{ count }} > 0
{%- endmacro %}

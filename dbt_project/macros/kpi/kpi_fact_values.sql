{#-
    The rows of the KPIs computed from facts (computation type aggregate or at_period_end),
    for every grain and slice, in the shape kpi_id, grain, period_start, dimension,
    dimension_value, numerator, denominator, value, secondary_value, _transformed_at.
    Company-wide rows have dimension and dimension_value 'all'. Each KPI is one CTE named
    kpi_<id>, headed by its label and definition, so that the compiled model reads KPI by KPI.

    over_incremental_facts: the flows (aggregate) over incremental facts, whose model is
    incremental too and recomputes only the periods in kpi_changed_periods; otherwise every
    other KPI computed from facts, rebuilt in full. A ratio is a ratio of sums and a median a
    true median at every grain; the catalogue entry's rollup says how longer grains are
    computed (kpi_rollup_select). distinct_members: the model of the distinct counts' members
    by day (kpi_distinct_member_rows), which lets a run update those counts from the members
    that changed (kpi_distinct_delta_select).
-#}
{% macro kpi_fact_values(over_incremental_facts, distinct_members=none) -%}
    {%- do kpi_fact_refs(over_incremental_facts) -%}
    {%- set kpis = kpi_fact_kpis(over_incremental_facts) -%}
    {%- set changed_only = is_incremental() -%}
    {%- set from_members = changed_only and distinct_members is not none
        and kpi_distinct_members_in_step(distinct_members) -%}
    with
    {%- if changed_only %}
    kpi_changed_periods as (
        {{ kpi_changed_periods(kpis) }}
    ),
    {%- endif %}
    {%- for kpi in kpis %}

    {{ kpi_definition_comment(kpi) }}
    kpi_{{ kpi.id }} as (
        {%- if from_members and kpi_rollup(kpi) == 'distinct_members' %}
        {{ kpi_distinct_delta_select(kpi, distinct_members) | indent(4) }}
        {%- elif kpi_rollup(kpi) == 'sum_of_days' %}
        {{ kpi_rolled_up_select(kpi, changed_only) | indent(4) }}
        {%- else %}
        {{ kpi_fact_select(kpi, kpi_grains(kpi), changed_only) | indent(4) }}
        {%- endif %}
    ),
    {%- endfor %}

    kpi_rows as (
        {{- kpi_rows_of(kpis) | indent(4) }}
    )

    select
        {{ kpi_row_columns() }},
        {{ dbt.current_timestamp() }} as _transformed_at
    from kpi_rows
    {%- if changed_only %}
    union all
    {{ kpi_period_markers([
        ('numerator', type_double()), ('denominator', type_double()),
        ('value', type_double()), ('secondary_value', type_double()),
    ]) }}
    {%- endif %}
{%- endmacro %}

{#-
    The KPIs computed from facts, in catalogue order: the flows (aggregate) over an
    incremental fact, or all the others. A stock (at_period_end) depends on the as-of date,
    so it is rebuilt in full whatever its fact.
-#}
{% macro kpi_fact_kpis(over_incremental_facts) -%}
    {%- set kpis = [] -%}
    {%- for kpi in kpi_catalogue() if kpi.computation.type in ('aggregate', 'at_period_end') -%}
        {%- set fact = graph.nodes.get('model.' ~ project_name ~ '.' ~ kpi.computation.fact) -%}
        {%- set is_incremental_flow = kpi.computation.type == 'aggregate'
            and fact is not none and fact.config.materialized == 'incremental' -%}
        {%- if is_incremental_flow == over_incremental_facts -%}
            {%- do kpis.append(kpi) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(kpis) }}
{%- endmacro %}

{#-
    dbt must see a model's refs when it parses it, before the catalogue (the meta of the
    kpi_catalogue model) can be read: the dbt invocation (boussole/dbt_invocation.py) passes
    the models the entries read in the var kpi_fact_models, one list for the flows over
    incremental facts and one for the KPIs rebuilt in full, and each model of a list is a ref
    of the KPI models that compute those KPIs. When they run, a KPI whose model is in the
    other list (its materialization set elsewhere than its config() block) fails here.
-#}
{% macro kpi_fact_refs(over_incremental_facts) -%}
    {%- set list_name = 'incremental_flows' if over_incremental_facts else 'rebuilt_in_full' -%}
    {%- set fact_models = var('kpi_fact_models', none) -%}
    {%- if fact_models is none -%}
        {{ exceptions.raise_compiler_error(
            "the var kpi_fact_models, the models the KPI catalogue reads, is set by Boussole's"
            ~ " dbt invocation: run dbt as `boussole dbt <command>`, and sqlfluff with the config"
            ~ " that `boussole prepare --sqlfluff-config FILE` writes") }}
    {%- elif fact_models is string -%}
        {#- sqlfluff's dbt templater passes its vars as text -#}
        {%- set fact_models = fromjson(fact_models) -%}
    {%- endif -%}
    {%- for model in fact_models[list_name] -%}
        {%- do ref(model) -%}
    {%- endfor -%}
    {%- do ref('int_kpi__periods') -%}
    {%- for kpi in kpi_fact_kpis(over_incremental_facts) if kpi.computation.fact not in fact_models[list_name] -%}
        {{ exceptions.raise_compiler_error(
            "KPI '" ~ kpi.id ~ "' reads '" ~ kpi.computation.fact ~ "', which is not in the var"
            ~ " kpi_fact_models." ~ list_name ~ ": set the model's materialization in its"
            ~ " config() block, where boussole/kpi_catalogue.py reads it") }}
    {%- endfor -%}
{%- endmacro %}

{#- A SQL comment heading a KPI's CTE: its label and its definition from the catalogue. -#}
{% macro kpi_definition_comment(kpi) -%}
    -- {{ kpi.id }}: {{ kpi.label_en }} ({{ kpi.label_fr }}), {{ kpi.unit }}, {{ kpi.computation.type }}
    {%- if kpi.computation.get('rollup') %}, rollup {{ kpi.computation.rollup }}{% endif %}
    -- {{ (kpi.description | string | replace('\n', ' ')) | wordwrap(88, wrapstring='\n    -- ') }}
    -- formula: {{ kpi.formula }}
{%- endmacro %}

{#-
    The periods, at every grain of the KPIs (or only_grain), that hold a date of a fact row
    changed since the model's last run. A fact may declare in its meta (kpi_date_ranges:
    {date column: through column}) how far a change of a row can have moved that date, so
    that the period the row left is recomputed as well as the one it joined.
-#}
{% macro kpi_changed_periods(kpis, only_grain=none) -%}
    {%- set ranges = [] -%}
    {%- set grains = [only_grain] if only_grain else [] -%}
    {%- for kpi in kpis -%}
        {%- set fact = kpi.computation.fact -%}
        {%- set date_column = kpi.computation.date -%}
        {%- set date_ranges = graph.nodes['model.' ~ project_name ~ '.' ~ fact].config.meta.get('kpi_date_ranges', {}) -%}
        {%- set range = (fact, date_column, date_ranges.get(date_column, date_column)) -%}
        {%- if range not in ranges -%}
            {%- do ranges.append(range) -%}
        {%- endif -%}
        {%- for grain in kpi_grains(kpi) if grain not in grains and not only_grain -%}
            {%- do grains.append(grain) -%}
        {%- endfor -%}
    {%- endfor -%}
    select distinct
        periods.grain,
        periods.period_start,
        periods.period_end
    from {{ ref('int_kpi__periods') }} as periods
    inner join (
        {%- for fact, date_column, through_column in ranges %}
            select distinct
                {{ date_column }} as changed_from,
                {{ through_column }} as changed_through
            from {{ ref(fact) }}
            where {{ date_column }} is not null and _transformed_at > {{ last_transformed_at() }}
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    ) as changes
        on periods.period_start <= changes.changed_through and periods.period_end >= changes.changed_from
    where periods.grain in ('{{ grains | join("', '") }}')
{%- endmacro %}

{#- The key of a KPI's rows, first in each select that computes them. -#}
{% macro kpi_key_columns(kpi) -%}
    '{{ kpi.id }}' as kpi_id,
    grain,
    period_start,
    dimension,
    dimension_value
{%- endmacro %}

{#- The KPI columns of one row group, from the computation's aggregate expressions. -#}
{% macro kpi_measure_columns(computation) -%}
    {%- set numerator = kpi_expression(computation.numerator) -%}
    {%- set denominator = kpi_expression(computation.denominator) if computation.denominator else none -%}
    {%- if computation.value -%}
        {%- set value = kpi_expression(computation.value) -%}
    {%- elif denominator -%}
        {#- A double dividend: integer division truncates on most engines (not DuckDB). -#}
        {%- set value = 'cast(' ~ numerator ~ ' as ' ~ type_double() ~ ') / nullif(' ~ denominator ~ ', 0)' -%}
    {%- else -%}
        {%- set value = numerator -%}
    {%- endif -%}
    {%- set secondary = kpi_expression(computation.secondary_value) if computation.secondary_value else 'null' -%}
    cast({{ numerator }} as {{ type_double() }}) as numerator,
    cast({{ denominator or 'null' }} as {{ type_double() }}) as denominator,
    cast({{ value }} as {{ type_double() }}) as value,
    cast({{ secondary }} as {{ type_double() }}) as secondary_value
{%- endmacro %}

{#- Whether a row of the relation alias has a period among kpi_changed_periods. -#}
{% macro kpi_in_changed_periods(alias) -%}
    exists (
        select 1
        from kpi_changed_periods
        where kpi_changed_periods.grain = {{ alias }}.grain and kpi_changed_periods.period_start = {{ alias }}.period_start
    )
{%- endmacro %}

{#-
    One KPI at the given grains and all its slices in a single aggregation: the fact rows are
    repeated once per grain and slice (a cross join with the lists of both), then grouped.
    changed_only keeps the periods of kpi_changed_periods.
-#}
{% macro kpi_fact_select(kpi, grains, changed_only=false) -%}
    {%- set computation = kpi.computation -%}
    {%- set slices = kpi_slices(kpi) -%}
    select
        {{ kpi_key_columns(kpi) | indent(4) }},
        {{ kpi_measure_columns(computation) | indent(4) }}
    from (
        select
            fact_periods.*,
            kpi_dimensions.dimension,
            {{ kpi_dimension_value(slices, 'fact_periods') | indent(8) }} as dimension_value
        from (
            {%- if changed_only %}
            -- Each fact row once per changed period that holds its date (a flow: see
            -- kpi_fact_kpis), instead of once per grain and then filtered.
            select
                kpi_changed_periods.grain,
                kpi_changed_periods.period_start,
                facts.*
            from {{ kpi_fact_rows(kpi) | indent(4) }} as facts
            inner join kpi_changed_periods
                on
                    facts.{{ computation.date }} >= kpi_changed_periods.period_start
                    and facts.{{ computation.date }} <= kpi_changed_periods.period_end
            where kpi_changed_periods.grain in ('{{ grains | join("', '") }}')
            {%- else %}
            select
                {%- if computation.type == 'aggregate' %}
                kpi_grains.grain,
                case kpi_grains.grain
                    {%- for grain in grains %}
                    when '{{ grain }}' then cast({{ dbt.date_trunc(grain, 'facts.' ~ computation.date) }} as date)
                    {%- endfor %}
                end as period_start,
                {%- else %}
                facts.kpi_grain as grain,
                facts.kpi_period_start as period_start,
                {%- endif %}
                facts.*
            from {{ kpi_fact_rows(kpi) | indent(4) }} as facts
            {%- if computation.type == 'aggregate' %}
            cross join ({{ kpi_literal_rows('grain', grains) }}) as kpi_grains
            {%- endif %}
            {%- endif %}
        ) as fact_periods
        cross join ({{ kpi_dimensions(slices) }}) as kpi_dimensions
    ) as kpi_fact_rows
    group by grain, period_start, dimension, dimension_value
{%- endmacro %}

{#-
    How a KPI computed from facts gets its longer grains: the entry's computation.rollup.
      sum_of_days       a flow of plain sums or counts: a week, month... is the sum of its
                        days' numerators and denominators (still a ratio of sums), one pass
                        over the facts instead of one per grain.
      distinct_members  a count of distinct computation.members: recounted from the facts at
                        every grain, or, in an incremental model, updated from the members
                        that changed (kpi_distinct_member_rows).
      from_facts        (default) computed from the facts at every grain: medians, means of
                        a value expression, stocks.
-#}
{% macro kpi_rollup(kpi) -%}
    {%- set computation = kpi.computation -%}
    {%- set rollup = computation.get('rollup', 'from_facts') -%}
    {%- if rollup == 'sum_of_days' and (computation.type != 'aggregate' or computation.value
        or computation.secondary_value or 'day' not in kpi_grains(kpi)) -%}
        {{ exceptions.raise_compiler_error(
            "KPI '" ~ kpi.id ~ "': rollup sum_of_days needs a flow (aggregate) at day grain whose "
            ~ "value is numerator / denominator, with no value or secondary_value expression") }}
    {%- endif -%}
    {%- if rollup == 'distinct_members' and (computation.type != 'aggregate' or computation.denominator
        or computation.value or computation.secondary_value
        or (computation.numerator | replace(' ', '')) != 'count(distinct' ~ computation.members ~ ')') -%}
        {{ exceptions.raise_compiler_error(
            "KPI '" ~ kpi.id ~ "': rollup distinct_members needs a flow (aggregate) whose numerator "
            ~ "is count(distinct <members>), with no denominator, value or secondary_value") }}
    {%- endif -%}
    {%- if rollup not in ('sum_of_days', 'distinct_members', 'from_facts') -%}
        {{ exceptions.raise_compiler_error("KPI '" ~ kpi.id ~ "': unknown rollup '" ~ rollup ~ "'") }}
    {%- endif -%}
    {{ return(rollup) }}
{%- endmacro %}

{#-
    changed_only: the changed days are computed from the facts, the other days of the changed
    periods are the day rows the model already holds.
-#}
{% macro kpi_rolled_up_select(kpi, changed_only=false) -%}
    {%- set grains = kpi_grains(kpi) -%}
    {%- set has_denominator = kpi.computation.get('denominator') is not none -%}
    select
        {{ kpi_key_columns(kpi) | indent(4) }},
        sum(numerator) as numerator,
        sum(denominator) as denominator,
        {%- if has_denominator %}
        sum(numerator) / nullif(sum(denominator), 0) as value,
        {%- else %}
        sum(numerator) as value,
        {%- endif %}
        cast(null as {{ type_double() }}) as secondary_value
    from (
        select
            kpi_grains.grain,
            case kpi_grains.grain
                {%- for grain in grains %}
                when '{{ grain }}' then cast({{ dbt.date_trunc(grain, 'kpi_days.period_start') }} as date)
                {%- endfor %}
            end as period_start,
            kpi_days.dimension,
            kpi_days.dimension_value,
            kpi_days.numerator,
            kpi_days.denominator
        from (
            {{ kpi_fact_select(kpi, ['day'], changed_only) | indent(8) }}
            {%- if changed_only %}
            union all
            select {{ kpi_row_columns() }}
            from {{ this }} as stored
            where
                stored.kpi_id = '{{ kpi.id }}'
                and stored.grain = 'day'
                and stored.period_start >= (select min(kpi_changed_periods.period_start) from kpi_changed_periods)
                and not {{ kpi_in_changed_periods('stored') }}
            {%- endif %}
        ) as kpi_days
        cross join ({{ kpi_literal_rows('grain', grains) }}) as kpi_grains
    ) as kpi_day_periods
    {%- if changed_only %}
    where {{ kpi_in_changed_periods('kpi_day_periods') }}
    {%- endif %}
    group by grain, period_start, dimension, dimension_value
{%- endmacro %}

{#-
    The fact rows a KPI counts. For a flow (aggregate), the rows with a date. For a stock
    (at_period_end), each row once per period whose last day it covers, with the period as
    kpi_grain and kpi_period_start: the fact holds spells of its records' states (state_from
    included, state_until excluded, null = still so; see kpi_state_spells), so a stock counts
    its records as they stood on that day. A KPI may narrow the spell further with its own
    validity, from valid_from (included) to valid_until (excluded; null = still valid) or for
    valid_for_days days (a won deal counts in the 365 days after its close date).
-#}
{% macro kpi_fact_rows(kpi) -%}
    {%- set computation = kpi.computation -%}
    {%- set where = kpi_expression(computation.where) if computation.where else 'true' -%}
    {%- if computation.type == 'aggregate' -%}
        (select * from {{ ref(computation.fact) }} where {{ computation.date }} is not null and ({{ where }}))
    {%- else -%}
        {%- do kpi_check_state_fact(kpi) -%}
        {%- set valid_from = 'valid_rows.state_from' -%}
        {%- set valid_until = 'valid_rows.state_until' -%}
        {%- if computation.valid_from -%}
            {%- set own_from = 'valid_rows.' ~ computation.valid_from -%}
            {%- if computation.valid_for_days -%}
                {%- set own_until = dbt.dateadd('day', computation.valid_for_days, own_from) -%}
            {%- else -%}
                {%- set own_until = 'valid_rows.' ~ computation.valid_until -%}
            {%- endif -%}
            {#- The later start and the earlier end, in one range for the join (null = open). -#}
            {%- set valid_from = 'case when ' ~ own_from ~ ' > valid_rows.state_from then ' ~ own_from
                ~ ' else valid_rows.state_from end' -%}
            {%- set valid_until = 'case when valid_rows.state_until is null then ' ~ own_until
                ~ ' when ' ~ own_until ~ ' is null or ' ~ own_until ~ ' > valid_rows.state_until'
                ~ ' then valid_rows.state_until else ' ~ own_until ~ ' end' -%}
        {%- endif -%}
        (
            select
                periods.grain as kpi_grain,
                periods.period_start as kpi_period_start,
                stock_rows.*
            from {{ ref('int_kpi__periods') }} as periods
            inner join (
                select
                    valid_rows.*,
                    {{ valid_from }} as kpi_valid_from,
                    {{ valid_until }} as kpi_valid_until
                from (select * from {{ ref(computation.fact) }} where {{ where }}) as valid_rows
            ) as stock_rows
                on
                    stock_rows.kpi_valid_from <= periods.period_end
                    and (stock_rows.kpi_valid_until is null or stock_rows.kpi_valid_until > periods.period_end)
            where periods.has_started and periods.grain in ('{{ kpi_grains(kpi) | join("', '") }}')
        )
    {%- endif -%}
{%- endmacro %}

{#-
    A stock counts spells of states (kpi_state_spells): its fact must document the columns
    state_from and state_until, so that no stock is computed from a current state.
-#}
{% macro kpi_check_state_fact(kpi) -%}
    {%- set fact = graph.nodes.get('model.' ~ project_name ~ '.' ~ kpi.computation.fact) -%}
    {%- if fact is none or not ('state_from' in fact.columns and 'state_until' in fact.columns) -%}
        {{ exceptions.raise_compiler_error(
            "KPI '" ~ kpi.id ~ "' is a stock (at_period_end): its fact '" ~ kpi.computation.fact
            ~ "' must hold spells of states, with the documented columns state_from and state_until "
            ~ "(see macros/kpi/kpi_state_spells.sql)") }}
    {%- endif -%}
{%- endmacro %}

{#-
    A KPI's dimensions ('all' and its slices), as rows of a relation to cross join with the
    fact rows, and the slice value of a row (alias.dimension, 'all' for the company total).
-#}
{% macro kpi_dimensions(slices) -%}
    {{ kpi_literal_rows('dimension', ['all'] + (slices.keys() | list)) }}
{%- endmacro %}

{% macro kpi_dimension_value(slices, alias) -%}
    case kpi_dimensions.dimension
        {%- for dimension, column in slices.items() %}
        when '{{ dimension }}' then coalesce(cast({{ alias }}.{{ column }} as {{ dbt.type_string() }}), '(not set)')
        {%- endfor %}
        else 'all'
    end
{%- endmacro %}

{#- A one-column relation of literal rows. -#}
{% macro kpi_literal_rows(column, values) -%}
    {%- for value in values -%}
        select '{{ value }}' as {{ column }}{% if not loop.last %} union all {% endif %}
    {%- endfor -%}
{%- endmacro %}

{#- The columns of a KPI row, in order. -#}
{% macro kpi_row_columns() -%}
    kpi_id, grain, period_start, dimension, dimension_value, numerator, denominator, value, secondary_value
{%- endmacro %}

{#-
    One marker row per period of kpi_changed_periods (kpi_id null): the replace_kpi_periods
    strategy deletes the period's stored rows by it, also when no row is left, and does not
    store it. columns: the model's columns between dimension_value and _transformed_at, as
    (name, type).
-#}
{% macro kpi_period_markers(columns) -%}
    select
        cast(null as {{ dbt.type_string() }}) as kpi_id,
        grain,
        period_start,
        cast(null as {{ dbt.type_string() }}) as dimension,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        {%- for name, type in columns %}
        cast(null as {{ type }}) as {{ name }},
        {%- endfor %}
        {{ dbt.current_timestamp() }} as _transformed_at
    from kpi_changed_periods
{%- endmacro %}

{#- The rows of the CTEs kpi_<id> of `kpis`, one after the other (none without KPIs). -#}
{% macro kpi_rows_of(kpis) -%}
    {%- for kpi in kpis %}
    select {{ kpi_row_columns() }} from kpi_{{ kpi.id }}
        {%- if not loop.last %}
    union all
        {%- endif %}
    {%- endfor %}
    {%- if not kpis %}
    {{ kpi_empty_rows() }}
    {%- endif %}
{%- endmacro %}

{% macro kpi_empty_rows() -%}
    select
        cast(null as {{ dbt.type_string() }}) as kpi_id,
        cast(null as {{ dbt.type_string() }}) as grain,
        cast(null as date) as period_start,
        cast(null as {{ dbt.type_string() }}) as dimension,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        cast(null as {{ type_double() }}) as numerator,
        cast(null as {{ type_double() }}) as denominator,
        cast(null as {{ type_double() }}) as value,
        cast(null as {{ type_double() }}) as secondary_value
    where 1 = 0
{%- endmacro %}

{#-
    The states of records over time, from every delivered version of them: the one mechanism
    behind the stocks (at_period_end KPIs), whose facts hold one row per spell of a record's
    state, from state_from (included) to state_until (excluded; null = still so). A stock at a
    period's last day counts the spells that cover it (kpi_fact_rows).

    - A record's state on a date is its latest version updated on or before that date (in the
      order of rank_versions: updated_at, then delivery). Of two versions of one day, the later
      one holds at the end of the day: the earlier one's spell is empty and left out.
    - A record exists from its start (started_at, else its first version): before its first
      version it was open, in the state of its first version when that one is open (whose
      spell reaches back to the start). When the first version is already closed, a spell with
      is_before_first_version covers the days from the start to the close, with the first
      version's columns: the model says what its unknown state counts as.
    - A version that closes an open record (is_closed, the version before it not) holds from
      its close instant closed_at (a close date, a solve time) when that is before its update,
      though not before the version before it: a close entered late counts from its day.
      closed_at may read previous_updated_at, the updated_at of the version before (null for
      the first one).

    versions: a relation or CTE with key, updated_at, _extract_date, _source_file,
    _record_number and the columns the expressions read. Returns its columns with
    version_number, state_from, state_until and is_before_first_version (and the helper
    columns kpi_*).
-#}
{% macro kpi_state_spells(versions, key, started_at, is_closed, closed_at) -%}
    {%- set version_order -%}
        partition by versions.{{ key }}
        order by versions.updated_at nulls first, versions._extract_date, versions._source_file, versions._record_number
    {%- endset -%}
    select *
    from (
        select
            kpi_starts.*,
            kpi_spell_kinds.is_before_first_version,
            case
                when kpi_spell_kinds.is_before_first_version then kpi_starts.kpi_started_date
                else kpi_starts.kpi_version_from
            end as state_from,
            case
                when kpi_spell_kinds.is_before_first_version then kpi_starts.kpi_version_from
                else lead(kpi_starts.kpi_version_from) over (
                    partition by kpi_starts.{{ key }}, kpi_spell_kinds.is_before_first_version
                    order by kpi_starts.version_number
                )
            end as state_until
        from (
            select
                kpi_closes.*,
                case
                    when kpi_closes.kpi_is_closing
                        then least(
                            kpi_closes.kpi_version_date,
                            greatest(
                                coalesce({{ reporting_date('kpi_closes.kpi_closed_at') }}, kpi_closes.kpi_version_date),
                                coalesce(
                                    {{ reporting_date('kpi_closes.previous_updated_at') }}, kpi_closes.kpi_started_date
                                )
                            )
                        )
                    when kpi_closes.version_number = 1
                        then least(kpi_closes.kpi_version_date, kpi_closes.kpi_started_date)
                    else kpi_closes.kpi_version_date
                end as kpi_version_from
            from (
                select
                    kpi_ordered.*,
                    kpi_ordered.kpi_is_closed and not coalesce(kpi_ordered.kpi_previous_is_closed, false)
                        as kpi_is_closing,
                    {{ closed_at }} as kpi_closed_at
                from (
                    select
                        versions.*,
                        row_number() over ({{ version_order }}) as version_number,
                        lag(versions.updated_at) over ({{ version_order }}) as previous_updated_at,
                        lag({{ is_closed }}) over ({{ version_order }}) as kpi_previous_is_closed,
                        {{ is_closed }} as kpi_is_closed,
                        -- a version without updated_at holds from its extract date at the latest
                        coalesce({{ reporting_date('versions.updated_at') }}, versions._extract_date)
                            as kpi_version_date,
                        coalesce(
                            {{ reporting_date(started_at) }},
                            {{ reporting_date('versions.updated_at') }},
                            versions._extract_date
                        ) as kpi_started_date
                    from {{ versions }} as versions
                ) as kpi_ordered
            ) as kpi_closes
        ) as kpi_starts
        -- every version's own spell, and the spell before a first version that closes
        cross join (select false as is_before_first_version union all select true) as kpi_spell_kinds
        where
            not kpi_spell_kinds.is_before_first_version
            or (
                kpi_starts.version_number = 1
                and kpi_starts.kpi_is_closing
                and kpi_starts.kpi_started_date < kpi_starts.kpi_version_from
            )
    ) as kpi_spells
    where kpi_spells.state_until is null or kpi_spells.state_until > kpi_spells.state_from
{%- endmacro %}

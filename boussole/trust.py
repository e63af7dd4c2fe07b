"""How far each published KPI value can be trusted: `trust_status` and `trust_reasons` on every
row of the published kpi_values, from the checks on that value's own inputs.

A value's inputs are the source systems of its KPI (catalogue `source_systems`) on the days of
its period, and the facts its KPI reads (for a combination, its inputs'), beside its own
anomaly and restatement records. In order of precedence:

- untrusted: a quality check failed on an input: a raw check (gx_raw_quality) on an extract day
  of the period of one of its sources, as the latest run that judged that day left it, or a
  suite on one of its facts in this run (a warning: a blocking failure refuses the publication
  instead). An extract day stands for the records delivered that day: a record of an earlier
  day delivered late is judged with the day it came.
- incomplete: the period is not complete (is_complete_period): still in progress, or a source
  day missing (missing_source_days).
- warning: its own anomaly (kpi_anomalies, warning or critical), a restatement by this
  publication, or a check on an input that could not run.
- trusted: none of these. A raw check that could not judge a day yet because the object's
  history is still too short (its first 28 days) is listed among the reasons, but does not
  make a value a warning: every value of a new deployment would be one.

`trust_reasons` lists every reason found (not only those of the status), most serious first;
`trust_reasons_fr` lists the same in French.
The statuses are written at publication, after the history has recorded the values: the
history keeps the values as published, and the trust of the latest publication is in
kpi_values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import duckdb

from boussole.restatements import kpi_facts

TRUST_STATUSES = ("trusted", "warning", "incomplete", "untrusted")
# The raw checks' tables are raw_<source>.<object>: the source system is the schema's suffix.
RAW_CHECK = "gx_raw_quality"


def _status_fr(status: str) -> str:
    """SQL: a check's status `status` (quality_results: passed, failed, could_not_run) in
    French."""
    return (
        f"case {status} when 'failed' then 'en échec' "
        f"when 'could_not_run' then 'n''a pas pu s''exécuter' else {status} end"
    )


def _anomaly_fr() -> str:
    """SQL: a kpi_anomalies row's kind (boussole/anomalies.py KINDS), else its severity, in
    French."""
    return (
        "coalesce(case kind when 'spike' then 'pic' when 'drop' then 'chute' "
        "when 'level_shift' then 'changement de niveau' when 'drift' then 'dérive' end, "
        "case severity when 'critical' then 'critique' else 'avertissement' end)"
    )


def _decimal_fr(number: str) -> str:
    """SQL: the number `number` as text with a decimal comma."""
    return f"replace(cast({number} as varchar), '.', ',')"


def _missing_days_fr(missing: str) -> str:
    """SQL: kpi_values.missing_source_days (dbt_project/models/kpi/kpi_values.sql writes it as
    'crm 1 day (first 2026-01-20); web 3 days (first 2026-02-14)') in French."""
    return (
        f"replace(replace({missing}, ' days (first ', ' jours (premier '), "
        "' day (first ', ' jour (premier ')"
    )


def annotate_trust(
    conn: duckdb.DuckDBPyConnection,
    catalogue: Mapping[str, Mapping],
    publication_id: str,
    audit_runs: Sequence[str],
    as_of_date: date | None,
) -> dict[str, int]:
    """Adds trust_status, trust_reasons and trust_reasons_fr to main.kpi_values of the new mart
    `conn`, which holds kpi_catalogue, kpi_anomalies, kpi_restatements and quality_results;
    the marts' suites are those of the latest of `audit_runs` (the runs that audited the
    build). Returns the number of values of each status."""
    conn.execute(
        "create temp table kpi_inputs (kpi_id varchar, source_system varchar, fact varchar)"
    )
    conn.executemany(
        "insert into kpi_inputs values (?, ?, ?)",
        [
            (kpi_id, source, None)
            for kpi_id, sources in conn.execute(
                "select kpi_id, source_systems from main.kpi_catalogue"
            ).fetchall()
            for source in (sources or "").split(",")
            if source
        ]
        + [(kpi_id, None, fact) for kpi_id in catalogue for fact in kpi_facts(catalogue, kpi_id)],
    )
    conn.execute(
        f"""
        create temp table value_reasons as
        -- A raw check's verdict on each day it judged, as the latest run that judged it left it.
        with raw_days as (
            select replace(split_part(table_name, '.', 1), 'raw_', '') as source_system,
                table_name, expectation, status, unnest(extract_dates) as extract_date,
                checked_at, coalesce(note like '%days of history%', false) as lacks_history
            from main.quality_results
            where check_name = '{RAW_CHECK}'
        ),
        raw_verdicts as (
            select * from raw_days
            qualify row_number() over (
                partition by table_name, expectation, extract_date order by checked_at desc
            ) = 1
        ),
        fact_verdicts as (
            select split_part(table_name, '.', 2) as fact, check_name, expectation, status
            from main.quality_results
            where check_name <> '{RAW_CHECK}' and status <> 'passed'
                -- The suites of the latest of the runs that audited the build.
                and run_id = (
                    select max_by(audited.run_id, audited.checked_at)
                    from main.quality_results as audited
                    where audited.check_name <> '{RAW_CHECK}'
                        and list_contains($audit_runs, audited.run_id)
                )
        ),
        raw_days_of_values as (
            select v.kpi_id, v.grain, v.period_start, v.dimension, v.dimension_value,
                r.table_name, r.expectation, r.status, r.lacks_history,
                min(r.extract_date) as first_day, count(*) as days
            from main.kpi_values as v
            join kpi_inputs as i on i.kpi_id = v.kpi_id
            join raw_verdicts as r
                on r.source_system = i.source_system
                and r.extract_date between v.period_start and v.period_end
                and r.status <> 'passed'
            group by all
        ),
        -- Each reason in English and in French (the dashboard's French pages); numbers take a
        -- decimal comma in French, dates stay ISO.
        reasons as (
            select kpi_id, grain, period_start, dimension, dimension_value,
                case when status = 'failed' then 3 when lacks_history then 0 else 1 end as rank,
                table_name || ' ' || expectation || ' '
                    || case when lacks_history then 'not judged yet (too short a history)'
                        else replace(status, '_', ' ') end
                    || ' on ' || first_day
                    || case when days = 2 then ' (and 1 more day)'
                        when days > 2 then ' (and ' || (days - 1) || ' more days)' else '' end
                    as reason,
                table_name || ' ' || expectation || ' '
                    || case when lacks_history then 'pas encore jugé (historique trop court)'
                        else {_status_fr("status")} end
                    || ' le ' || first_day
                    || case when days = 2 then ' (et 1 autre jour)'
                        when days > 2 then ' (et ' || (days - 1) || ' autres jours)' else '' end
                    as reason_fr
            from raw_days_of_values
            union all
            select v.kpi_id, v.grain, v.period_start, v.dimension, v.dimension_value,
                case f.status when 'failed' then 3 else 1 end,
                f.check_name || ' ' || f.expectation || ' ' || replace(f.status, '_', ' '),
                f.check_name || ' ' || f.expectation || ' ' || {_status_fr("f.status")}
            from main.kpi_values as v
            join kpi_inputs as i on i.kpi_id = v.kpi_id
            join fact_verdicts as f on f.fact = i.fact
            union all
            select kpi_id, grain, period_start, dimension, dimension_value, 2,
                case when period_end >= $as_of then 'period in progress'
                    else 'missing source days: ' || coalesce(missing_source_days, 'unknown')
                end,
                case when period_end >= $as_of then 'période en cours'
                    else 'jours de source manquants : '
                        || coalesce({_missing_days_fr("missing_source_days")}, 'inconnus')
                end
            from main.kpi_values
            where not is_complete_period
            union all
            select kpi_id, grain, period_start, dimension, dimension_value, 1,
                'anomaly: ' || coalesce(kind, severity) || ' (score '
                    || round(score, 1) || ', expected ' || round(expected_value, 2) || ')',
                'anomalie : ' || {_anomaly_fr()} || ' (score '
                    || {_decimal_fr("round(score, 1)")} || ', attendu '
                    || {_decimal_fr("round(expected_value, 2)")} || ')'
            from main.kpi_anomalies
            where severity in ('warning', 'critical')
            union all
            select kpi_id, grain, period_start, dimension, dimension_value, 1,
                'restated from ' || old_value || ' to ' || new_value,
                'retraité de ' || {_decimal_fr("old_value")} || ' à ' || {_decimal_fr("new_value")}
            from main.kpi_restatements
            where publication_id = $publication_id
        )
        -- Most serious first, in the same order in both languages.
        select kpi_id, grain, period_start, dimension, dimension_value, max(rank) as rank,
            string_agg(reason, '; ' order by rank desc, reason) as reasons,
            string_agg(reason_fr, '; ' order by rank desc, reason) as reasons_fr
        from (select distinct * from reasons)
        group by all
        """,
        {"audit_runs": list(audit_runs), "as_of": as_of_date, "publication_id": publication_id},
    )
    statuses = ", ".join(f"'{status}'" for status in TRUST_STATUSES)
    conn.execute(
        f"""
        create or replace table main.kpi_values as
        select v.*,
            list_extract([{statuses}], coalesce(r.rank, 0) + 1) as trust_status,
            r.reasons as trust_reasons,
            r.reasons_fr as trust_reasons_fr
        from main.kpi_values as v
        left join value_reasons as r
            using (kpi_id, grain, period_start, dimension, dimension_value)
        """
    )
    conn.execute("drop table value_reasons; drop table kpi_inputs")
    return dict(
        conn.execute("select trust_status, count(*) from main.kpi_values group by all").fetchall()
    )

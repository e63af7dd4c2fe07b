"""Raw-layer quality and stability, per source, object and extract day, judged against history.

Everything is aggregated inside DuckDB from ingestion.load_manifest (one row per file read,
with its row counts) and, for the contract checks, from the raw rows of the judged days only:
Great Expectations receives one small row per (source, object, judged day), never the raw
records themselves.

Thresholds (documented in the README, "Data quality: who checks what"), per object, from
its own history before the first judged day (no look-ahead), passed to the suite as GX
parameters (<source>__<object>__<name>):

- volume: a day's loaded rows over its usual rows, the median of the same weekday in the
  VOLUME_WEEKS weeks before it (a day without a file counts 0), within 1 +- max(4 relative
  MADs of those weeks, BAND_MIN). A missing day (0), a halved day (0.5) and a doubled day
  (2.0) fall outside it. Not judged (passes, with a note saying why) where the usual day
  has fewer than MIN_USUAL_ROWS rows (counting noise alone would hide a halving) or where
  the history is too irregular (4 relative MADs beyond BAND_MAX).
- freshness: days since the object's last delivery, at most the longest gap between two
  of its deliveries in the FRESHNESS_DAYS days before (weekends without files are usual, a
  source that stops arriving is not). Judged for objects delivered on at least
  REGULAR_SHARE of those days.
- quarantine share: records quarantined over records read, at most the larger of
  QUARANTINE_FLOOR and twice the highest daily share of the weeks before, on days that read
  at least MIN_RECORDS_READ records.

Below MIN_HISTORY_DAYS days of history the stability expectations do not guess: they could
not run, "could not run: N days of history, M needed" (a warning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd

from boussole.ingestion.contracts import LANDING_OBJECTS, LandingObject
from boussole.yaml_files import read_yaml
from data_quality.runner import (
    BLOCKING,
    SUITES_DIR,
    ExpectationOutcome,
    ExpectationSpec,
    SuiteOutcome,
    SuiteRunner,
    SuiteSpec,
)

MIN_HISTORY_DAYS = 28
VOLUME_WEEKS = 8
FRESHNESS_DAYS = 56
# The days before the first judged day whose own history gives the thresholds.
REFERENCE_DAYS = 7
BAND_MIN, BAND_MAX, BAND_MADS = 0.25, 0.45, 4.0
QUARANTINE_FLOOR = 0.05
# Below this many rows on a usual day, counting noise alone hides a halved day.
MIN_USUAL_ROWS = 50
# A share of quarantined records is judged on days that read at least this many records.
MIN_RECORDS_READ = 20
# Freshness is judged for objects delivered on at least this share of the days before.
REGULAR_SHARE = 0.5
HISTORY_EXPECTATIONS = ("volume_within_usual_band", "delivered_on_time", "quarantine_share_usual")

_OBJECTS_SQL = " union all ".join(
    f"select '{o.source}' as source, '{o.name}' as object" for o in LANDING_OBJECTS
)


@dataclass(frozen=True)
class JudgedDays:
    """The extract days a run judges (its partitions); freshness is judged on each."""

    days: tuple[date, ...]

    @property
    def as_of(self) -> date:
        return max(self.days)

    @classmethod
    def between(cls, first: date, last: date) -> JudgedDays:
        return cls(tuple(first + timedelta(n) for n in range((last - first).days + 1)))


def daily_volumes(conn: duckdb.DuckDBPyConnection, judged: JudgedDays) -> pd.DataFrame:
    """One row per (source, object, day) from REFERENCE_DAYS days before the first judged
    day to the last: rows read, loaded and quarantined that day, the same-weekday volumes of
    the weeks before it, the history's length and the object's deliveries before it. Reads
    only the load manifest (one row per file)."""
    first = min(judged.days) - timedelta(REFERENCE_DAYS)
    days = [first + timedelta(n) for n in range((judged.as_of - first).days + 1)]
    window_start = first - timedelta(max(VOLUME_WEEKS * 7, FRESHNESS_DAYS))
    return conn.execute(
        f"""
        with objects as ({_OBJECTS_SQL}),
        delivered as (
            select source, object, extract_date, sum(rows_read) as rows_read,
                sum(rows_loaded) as rows_loaded, sum(rows_quarantined) as rows_quarantined
            from ingestion.load_manifest
            where status = 'loaded' and extract_date between ? and ?
            group by all
        ),
        first_days as (
            select source, min(extract_date) as first_day from ingestion.load_manifest
            where status = 'loaded' group by source
        ),
        days as (select unnest(?::date[]) as extract_date),
        grid as (
            select o.source, o.object, d.extract_date, f.first_day
            from objects o cross join days d left join first_days f using (source)
        ),
        history as (
            -- the same weekday, 1 to VOLUME_WEEKS weeks before, from the source's first day
            select g.source, g.object, g.extract_date,
                list(coalesce(d.rows_loaded, 0)) as same_weekday,
                list(coalesce(d.rows_quarantined, 0) / nullif(d.rows_read, 0))
                    filter (d.rows_read > 0) as quarantine_shares
            from grid g
            cross join range(1, {VOLUME_WEEKS + 1}) w(week)
            left join delivered d on d.source = g.source and d.object = g.object
                and d.extract_date = g.extract_date - (7 * w.week)::integer
            where g.extract_date - (7 * w.week)::integer >= g.first_day
            group by all
        ),
        gaps as (
            select source, object, extract_date,
                extract_date - lag(extract_date) over (
                    partition by source, object order by extract_date) as gap
            from delivered where rows_loaded > 0
        ),
        deliveries as (
            -- the last delivery up to the day, and the longest gap between two deliveries
            -- strictly before it, within the freshness window
            select g.source, g.object, g.extract_date,
                max(d.extract_date) filter (d.extract_date <= g.extract_date) as last_delivery,
                max(d.gap) filter (d.extract_date < g.extract_date
                    and d.extract_date >= g.extract_date - {FRESHNESS_DAYS}) as longest_gap,
                count(d.extract_date) filter (d.extract_date < g.extract_date
                    and d.extract_date >= g.extract_date - {FRESHNESS_DAYS})
                    as earlier_deliveries
            from grid g left join gaps d on d.source = g.source and d.object = g.object
            group by all
        )
        select g.source, g.object, g.extract_date, dayname(g.extract_date) as weekday,
            coalesce(d.rows_read, 0) as rows_read, coalesce(d.rows_loaded, 0) as rows_loaded,
            coalesce(d.rows_quarantined, 0) as rows_quarantined,
            coalesce(d.rows_quarantined, 0) / nullif(d.rows_read, 0) as quarantine_share,
            greatest(coalesce(g.extract_date - g.first_day, 0), 0) as history_days,
            list_aggregate(h.same_weekday, 'median') as usual_rows,
            list_aggregate(h.same_weekday, 'mad') as usual_mad,
            list_aggregate(h.quarantine_shares, 'max') as highest_quarantine_share,
            g.extract_date - dl.last_delivery as days_since_delivery,
            dl.longest_gap, dl.earlier_deliveries
        from grid g
        left join delivered d using (source, object, extract_date)
        left join history h using (source, object, extract_date)
        left join deliveries dl using (source, object, extract_date)
        order by g.source, g.object, g.extract_date
        """,
        [window_start, judged.as_of, [d.isoformat() for d in days]],
    ).df()


def volume_band(relative_mad: float) -> tuple[float, float]:
    """(lowest, highest) ratio of a day's rows to its usual rows that passes: 4 relative
    MADs of the history either side of 1, at least BAND_MIN."""
    half_width = max(BAND_MADS * 1.4826 * relative_mad, BAND_MIN)
    return round(1 - half_width, 4), round(1 + half_width, 4)


@dataclass(frozen=True)
class Thresholds:
    parameters: dict[str, Any]
    # The first judged day of each object with MIN_HISTORY_DAYS days of history before it.
    first_judged: dict[str, str]
    # (object key, expectation name) -> why it was not judged.
    notes: dict[tuple[str, str], str]


def parameter_prefix(key: str) -> str:
    """GX parameter names are identifiers: crm.deals -> crm__deals."""
    return key.replace(".", "__")


def thresholds(volumes: pd.DataFrame, judged: JudgedDays) -> Thresholds:
    """The parameters of each object's expectations, from the REFERENCE_DAYS days before its
    first judged day with MIN_HISTORY_DAYS days of history (each of those days with its own
    same-weekday history: nothing from the judged days themselves)."""
    parameters: dict[str, Any] = {}
    first_judged: dict[str, str] = {}
    notes: dict[tuple[str, str], str] = {}
    judged_days = {d.isoformat() for d in judged.days}
    for (source, object_name), group in volumes.groupby(["source", "object"], sort=True):
        group = group.sort_values("extract_date")
        key = f"{source}.{object_name}"
        in_run = group[group["extract_date"].isin(judged_days)]
        enough = in_run[in_run["history_days"] >= MIN_HISTORY_DAYS]
        if enough.empty:
            days = int(in_run["history_days"].max()) if len(in_run) else 0
            for name in HISTORY_EXPECTATIONS:
                notes[(key, name)] = (
                    f"could not run: {days} days of history, {MIN_HISTORY_DAYS} needed"
                )
            continue
        start = enough.iloc[0]["extract_date"]
        first_judged[key] = start
        param = parameter_prefix(key)
        since = (date.fromisoformat(start) - timedelta(REFERENCE_DAYS)).isoformat()
        reference = group[(group["extract_date"] < start) & (group["extract_date"] >= since)]

        usual = reference["usual_rows"].astype(float)
        with_volume = reference[usual >= MIN_USUAL_ROWS]
        low, high = 0.0, None
        if with_volume.empty:
            notes[(key, "volume_within_usual_band")] = (
                f"not judged: fewer than {MIN_USUAL_ROWS} rows on a usual day, too few to tell "
                "a halved day from chance"
            )
        else:
            relative = float((with_volume["usual_mad"] / with_volume["usual_rows"]).median())
            if BAND_MADS * 1.4826 * relative > BAND_MAX:
                notes[(key, "volume_within_usual_band")] = (
                    f"not judged: volume too irregular (same-weekday relative MAD "
                    f"{relative:.2f}) to tell a halved day from a usual one"
                )
            else:
                low, high = volume_band(relative)
        parameters[f"{param}__volume_ratio_min"] = low
        parameters[f"{param}__volume_ratio_max"] = high

        window = min(FRESHNESS_DAYS, int(enough.iloc[0]["history_days"]))
        delivered = int(reference["earlier_deliveries"].max() or 0)
        gap = reference["longest_gap"].max()
        if delivered >= REGULAR_SHARE * window and pd.notna(gap):
            parameters[f"{param}__days_since_delivery_max"] = int(gap)
        else:
            parameters[f"{param}__days_since_delivery_max"] = None
            notes[(key, "delivered_on_time")] = (
                f"not judged: delivered on {delivered} of the {window} days before, not "
                "regularly enough to expect a delivery"
            )
        highest = reference["highest_quarantine_share"].max()
        parameters[f"{param}__quarantine_share_max"] = round(
            max(QUARANTINE_FLOOR, 2 * float(highest) if pd.notna(highest) else 0.0), 4
        )
    return Thresholds(parameters, first_judged, notes)


def raw_frame(
    conn: duckdb.DuckDBPyConnection, judged: JudgedDays, objects=LANDING_OBJECTS
) -> tuple[pd.DataFrame, Thresholds]:
    """The frame the raw suite validates (one row per object and judged day) and its
    thresholds. A row takes part in an object's stability expectations when its key column
    (history_key, volume_key, quarantine_key) holds the object's key."""
    volumes = daily_volumes(conn, judged)
    volumes["extract_date"] = volumes["extract_date"].astype(str).str[:10]
    found = thresholds(volumes, judged)
    contract = raw_contract_counts(conn, judged, objects)
    in_run = volumes[volumes["extract_date"].isin({d.isoformat() for d in judged.days})]
    frame = in_run.merge(contract, how="left", on=["source", "object", "extract_date"])
    frame["object_key"] = frame["source"] + "." + frame["object"]
    first_judged = frame["object_key"].map(lambda key: found.first_judged.get(key, "9999"))
    judgeable = frame["extract_date"] >= first_judged
    frame["history_key"] = frame["object_key"].where(judgeable, "")
    usual = frame["usual_rows"].fillna(0).astype(float)
    frame["volume_key"] = frame["object_key"].where(judgeable & (usual >= MIN_USUAL_ROWS), "")
    frame["quarantine_key"] = frame["object_key"].where(
        judgeable & (frame["rows_read"] >= MIN_RECORDS_READ), ""
    )
    frame["volume_ratio"] = (frame["rows_loaded"] / usual.where(usual > 0)).fillna(1.0)
    # Never delivered up to the day: as late as the window is long.
    frame["days_since_delivery"] = frame["days_since_delivery"].fillna(FRESHNESS_DAYS)
    frame["quarantine_share"] = frame["quarantine_share"].fillna(0.0).astype(float)
    for column in ("records_missing_required", "duplicate_versions"):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["label"] = frame["object_key"] + " " + frame["extract_date"]
    columns = [
        "source",
        "object",
        "object_key",
        "history_key",
        "volume_key",
        "quarantine_key",
        "extract_date",
        "label",
        "rows_loaded",
        "usual_rows",
        "volume_ratio",
        "days_since_delivery",
        "quarantine_share",
        "records_missing_required",
        "duplicate_versions",
        "history_days",
    ]
    return frame[columns].reset_index(drop=True), found


def raw_contract_counts(
    conn: duckdb.DuckDBPyConnection, judged: JudgedDays, objects=LANDING_OBJECTS
) -> pd.DataFrame:
    """Per (source, object, judged day): raw records lacking a required field, and records
    sharing their id and version (update time) with another of the same day. Scans the raw
    rows of the judged days only."""
    days = [d.isoformat() for d in judged.days]
    existing = {
        f"{schema}.{name}"
        for schema, name in conn.execute(
            "select schema_name, table_name from duckdb_tables()"
        ).fetchall()
    }
    selects = [_contract_sql(o) for o in objects if o.raw_table in existing]
    if not selects:
        return pd.DataFrame(
            columns=[
                "source",
                "object",
                "extract_date",
                "records_missing_required",
                "duplicate_versions",
            ]
        )
    frame = conn.execute(" union all ".join(selects), [days] * len(selects)).df()
    frame["extract_date"] = frame["extract_date"].astype(str).str[:10]
    return frame


def _json_path(path: str) -> str:
    return json.dumps("$." + path).replace('"', "'")


def _contract_sql(landing_object: LandingObject) -> str:
    required = [
        rule.path for rule in landing_object.rules if rule.required and "[*]" not in rule.path
    ]
    missing = (
        " or ".join(f"(record ->> {_json_path(p)}) is null" for p in required)
        if required
        else "false"
    )
    if landing_object.version:
        id_path, updated_path = (_json_path(p) for p in landing_object.version)
        version_key = f"(record ->> {id_path}) || '|' || coalesce(record ->> {updated_path}, '')"
    else:
        version_key = "null"
    return (
        f"select '{landing_object.source}' as source, '{landing_object.name}' as object, "
        "_extract_date as extract_date, "
        f"count(*) filter ({missing}) as records_missing_required, "
        f"count({version_key}) - count(distinct {version_key}) as duplicate_versions "
        f"from {landing_object.raw_table} where list_contains(?::date[], _extract_date) "
        "group by all"
    )


# --- the raw suite ------------------------------------------------------------------------

RAW_SUITE_FILE = SUITES_DIR / "raw" / "raw_quality.yml"


def _expand(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return value.replace("{object_id}", parameter_prefix(key)).replace("{object}", key)
    if isinstance(value, dict):
        return {k: _expand(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, key) for v in value]
    return value


def raw_suite_template() -> dict[str, Any]:
    return read_yaml(RAW_SUITE_FILE)


def raw_suite(
    objects=LANDING_OBJECTS, skipped: dict[tuple[str, str], str] | None = None
) -> SuiteSpec:
    """The template's expectations: the per-object ones for every object, named
    <source>.<object>:<name>, but the (object key, expectation name) pairs in `skipped`; the
    others once, under their own name."""
    template = raw_suite_template()
    skipped = skipped or {}
    expectations = []
    for item in template["expectations"]:
        keys = [f"{o.source}.{o.name}" for o in objects] if item.get("per_object") else [None]
        for key in keys:
            if key is not None and (key, item["name"]) in skipped:
                continue
            expectations.append(
                ExpectationSpec(
                    name=f"{key}:{item['name']}" if key else item["name"],
                    type=item["type"],
                    kwargs=_expand(item["kwargs"], key) if key else item["kwargs"],
                    description=item.get("description", ""),
                    severity=item.get("severity", BLOCKING),
                )
            )
    return SuiteSpec(
        name=template["suite"],
        table="raw",
        description=template["description"],
        expectations=tuple(expectations),
        sample_column="label",
    )


@dataclass(frozen=True)
class RawOutcome:
    """The raw suite's outcome for one landing object, and the extract days each of its
    expectations concerns (the failed days when it failed, the judged ones otherwise)."""

    landing_object: LandingObject
    outcome: SuiteOutcome
    extract_dates: dict[str, list[date]]


def _days(rows: pd.DataFrame) -> list[date]:
    return sorted(date.fromisoformat(d) for d in rows["extract_date"])


def run_raw_suite(
    runner: SuiteRunner,
    conn: duckdb.DuckDBPyConnection,
    judged: JudgedDays,
    objects=LANDING_OBJECTS,
) -> list[RawOutcome]:
    """One GX validation of the run's raw frame; its outcomes split by object. A per-object
    expectation runs only where it can judge: below the minimum history it could not run
    (warning), and where the history shows nothing to expect (too few rows, too irregular,
    no row of the object to judge) it passes with a note saying so."""
    frame, found = raw_frame(conn, judged, objects)
    template = raw_suite_template()
    skipped = dict(found.notes)
    for item in template["expectations"]:
        if item.get("per_object"):
            column = item["kwargs"]["row_condition"]["column"]["name"]
            present = set(frame[column])
            for o in objects:
                key = f"{o.source}.{o.name}"
                if key not in present:
                    skipped.setdefault(
                        (key, item["name"]), "not judged: no day of the run to judge"
                    )
    validated = runner.run_frame(frame, raw_suite(objects, skipped), found.parameters)
    by_name = {o.name: o for o in validated.outcomes}
    results = []
    for landing_object in objects:
        key = f"{landing_object.source}.{landing_object.name}"
        rows = frame[frame["object_key"] == key]
        outcomes, days = [], {}
        for item in template["expectations"]:
            name, severity = item["name"], item.get("severity", BLOCKING)
            note = skipped.get((key, name))
            if not item.get("per_object"):
                shared = by_name[name]
                failed_rows = [i for i in shared.unexpected_rows if i in rows.index]
                if shared.status == "error":
                    mine = shared
                elif failed_rows:
                    column = item["kwargs"]["column"]
                    mine = replace(
                        shared,
                        status="failed",
                        unexpected_count=len(failed_rows),
                        unexpected_sample=[
                            f"{frame.at[i, 'label']}: {frame.at[i, column]}"
                            for i in failed_rows[:10]
                        ],
                    )
                else:
                    mine = replace(
                        shared, status="passed", unexpected_count=0, unexpected_sample=[]
                    )
                outcomes.append(replace(mine, unexpected_rows=failed_rows))
                days[name] = _days(frame.loc[failed_rows] if failed_rows else rows)
                continue
            if note is not None:
                status = "error" if note.startswith("could not run") else "passed"
                outcomes.append(
                    ExpectationOutcome(
                        name,
                        item["type"],
                        status,
                        error=note.removeprefix("could not run: ") if status == "error" else None,
                        note=note,
                        severity=severity,
                    )
                )
                days[name] = _days(rows)
                continue
            outcome = by_name[f"{key}:{name}"]
            column = item["kwargs"]["row_condition"]["column"]["name"]
            judged_rows = frame[frame[column] == key]
            if outcome.status == "failed" and outcome.unexpected_rows:
                judged_rows = frame.loc[outcome.unexpected_rows]
            days[name] = _days(judged_rows)
            outcomes.append(replace(outcome, name=name))
        results.append(
            RawOutcome(
                landing_object,
                SuiteOutcome(
                    suite=template["suite"],
                    table=landing_object.raw_table,
                    rows_validated=len(rows),
                    outcomes=tuple(outcomes),
                ),
                days,
            )
        )
    return results


def lacks_history(outcome: ExpectationOutcome) -> bool:
    """An expectation that could not run only because the history is still too short."""
    return (
        outcome.status == "error"
        and (outcome.note or "").startswith("could not run: ")
        and "days of history" in (outcome.note or "")
    )

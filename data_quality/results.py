"""Every expectation result of every run, kept in the publication history file.

`record_results` appends one row per expectation outcome to `quality_results` in the history
file (Settings.history_path, beside the publications it does not touch);
`copy_quality_results` copies that table into a mart being published, so that readers see
how every check went in every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from data_quality.runner import RESULT_STATUS, SuiteOutcome

QUALITY_RESULTS_DDL = """
create table if not exists quality_results (
    run_id VARCHAR NOT NULL,          -- the Dagster run
    checked_at TIMESTAMP WITH TIME ZONE NOT NULL,
    check_name VARCHAR NOT NULL,      -- the Dagster asset check (gx_<suite>, gx_raw_quality)
    suite VARCHAR NOT NULL,           -- the GX suite
    expectation VARCHAR NOT NULL,     -- its name in the suite
    expectation_type VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,      -- schema.table checked (raw_web.events, marts.fct_deals)
    extract_dates DATE[],             -- raw checks: the extract days it concerns (failed ones
                                      -- when it failed, every judged one otherwise)
    status VARCHAR NOT NULL,          -- passed | failed | could_not_run
    severity VARCHAR NOT NULL,        -- blocking (refuses publication) | warning (flags)
    observed_value VARCHAR,           -- JSON
    threshold VARCHAR,                -- JSON: the bounds or values judged against
    unexpected_count BIGINT,
    sample VARCHAR,                   -- JSON list: up to 10 unexpected values
    rows_validated BIGINT,            -- rows of the frame GX validated
    note VARCHAR                      -- why it could not run, what the history was
)
"""
COLUMNS = (
    "run_id",
    "checked_at",
    "check_name",
    "suite",
    "expectation",
    "expectation_type",
    "table_name",
    "extract_dates",
    "status",
    "severity",
    "observed_value",
    "threshold",
    "unexpected_count",
    "sample",
    "rows_validated",
    "note",
)


@dataclass(frozen=True)
class CheckedSuite:
    """A suite outcome as one Dagster check reported it, with the extract days it judged."""

    check_name: str
    outcome: SuiteOutcome
    extract_dates: dict[str, list[date]] | None = None  # by expectation name


def _json(value: Any) -> str | None:
    if value is None or value == [] or value == {}:
        return None
    return json.dumps(value, default=str, sort_keys=True)


def result_rows(run_id: str, checked: Iterable[CheckedSuite]) -> list[tuple]:
    now = datetime.now(UTC)
    rows = []
    for item in checked:
        days = item.extract_dates or {}
        for o in item.outcome.outcomes:
            rows.append(
                (
                    run_id,
                    now,
                    item.check_name,
                    item.outcome.suite,
                    o.name,
                    o.type,
                    item.outcome.table,
                    days.get(o.name),
                    RESULT_STATUS[o.status],
                    o.severity,
                    _json(o.observed_value),
                    _json(o.threshold),
                    o.unexpected_count,
                    _json(o.unexpected_sample),
                    item.outcome.rows_validated,
                    o.note or o.error,
                )
            )
    return rows


def record_results(history_path: Path, run_id: str, checked: Sequence[CheckedSuite]) -> int:
    """Appends the run's outcomes to quality_results in the history file; returns the rows."""
    rows = result_rows(run_id, checked)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(history_path)) as conn:
        conn.execute(QUALITY_RESULTS_DDL)
        if rows:
            placeholders = ", ".join("?" for _ in COLUMNS)
            conn.executemany(
                f"insert into quality_results ({', '.join(COLUMNS)}) values ({placeholders})",
                rows,
            )
    return len(rows)


def copy_quality_results(history_path: Path, mart_conn: duckdb.DuckDBPyConnection) -> int:
    """Creates (or replaces) quality_results in the mart `mart_conn` writes, from the history
    file: every result of every run (an empty table when none was recorded yet). Open no
    other connection to the history file in this process while it runs. Returns the rows."""
    mart_conn.execute("drop table if exists quality_results")
    mart_conn.execute(QUALITY_RESULTS_DDL)
    if not Path(history_path).exists():
        return 0
    mart_conn.execute("attach ? as quality_history (read_only)", [Path(history_path).as_posix()])
    try:
        has_table = mart_conn.execute(
            "select count(*) from duckdb_tables() where database_name = 'quality_history' "
            "and table_name = 'quality_results'"
        ).fetchone()[0]
        if has_table:
            columns = ", ".join(COLUMNS)
            mart_conn.execute(
                f"insert into quality_results ({columns}) "
                f"select {columns} from quality_history.quality_results "
                "order by checked_at, check_name, suite, expectation"
            )
    finally:
        mart_conn.execute("detach quality_history")
    return mart_conn.execute("select count(*) from quality_results").fetchone()[0]

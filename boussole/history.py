"""The publication history: every publication kept, append-only, where no rebuild can reach it.

`<data>/history/publications.duckdb` is written by the publication alone: no dbt model, full
refresh or re-ingestion opens it. Each publication adds one row to `publications` (id, time,
as-of extract date, Dagster run, code version, digest of the dbt project and suites) and, in
`kpi_value_changes`, only the `kpi_values` rows that are new, changed or removed since the
publication before (by key: KPI, grain, period, slice), so it grows with changes, not with the
number of publications times the size of the mart. Restatements detected by a publication
(boussole/restatements.py) are kept beside them.

Recording and the swap of the served mart cannot be one atomic step (two files). The published
mart therefore carries its own record: the whole history up to and including itself
(`publications`, `kpi_value_changes`, `kpi_restatements`, `kpi_restatement_causes`). After the
swap, `record_served` copies into the history what it lacks of the served mart; a crash between
the swap and that copy is made good by the next publication, which calls it again before
comparing with the history (and so does a history file lost: the served mart restores it).

In the published mart, the view `kpi_value_history` has one row per published version of a
value, with `valid_from` (when the publication that first served it was made) and `valid_to`
(when a later one replaced or removed it; null while it is served): the value of KPI k for
period p and slice s as published at time t is its row with valid_from <= t < valid_to (README,
"History").
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path

import duckdb

from boussole.pii_key import published_key_fingerprint
from boussole.settings import PROJECT_ROOT
from boussole.sql import quote_identifier

# A value of kpi_values is identified by these columns; any other column may change.
KEY = ("kpi_id", "grain", "period_start", "dimension", "dimension_value")
# Tables kept in the history and copied whole into each published mart.
RECORDED_TABLES = (
    "publications",
    "kpi_value_changes",
    "kpi_restatements",
    "kpi_restatement_causes",
)

_HISTORY_DDL = """
create table if not exists publications (
    publication_id VARCHAR PRIMARY KEY,
    publication_number BIGINT NOT NULL,
    published_at TIMESTAMP WITH TIME ZONE NOT NULL,
    as_of_date DATE,                 -- the latest extract date the published build read
    run_id VARCHAR,                  -- the Dagster run that published it
    code_version VARCHAR,            -- git describe, else the package version
    project_digest VARCHAR,          -- dbt project, suites, dbt and GX versions
    pii_key_fingerprint VARCHAR,     -- the key its pseudonyms were made with (pii_key.py)
    loaded_through TIMESTAMP WITH TIME ZONE,  -- latest load of the build's load manifest
    rows_published BIGINT,
    rows_new BIGINT,
    rows_changed BIGINT,
    rows_removed BIGINT,
    restatements BIGINT
);
create table if not exists kpi_restatements (
    restatement_id VARCHAR,
    publication_id VARCHAR,          -- the publication that detected and published it
    detected_in_run VARCHAR,
    detected_at TIMESTAMP WITH TIME ZONE,
    kpi_id VARCHAR, tier VARCHAR, grain VARCHAR, period_start DATE, period_end DATE,
    dimension VARCHAR, dimension_value VARCHAR,
    old_value DOUBLE, new_value DOUBLE, tolerance DOUBLE,
    first_published_at TIMESTAMP WITH TIME ZONE,  -- when a value was first published for it
    old_published_at TIMESTAMP WITH TIME ZONE,    -- when the replaced value was published
    accepted_by VARCHAR, accepted_at TIMESTAMP WITH TIME ZONE, acceptance_reason VARCHAR,
    causes VARCHAR                   -- the records of kpi_restatement_causes, in words
);
create table if not exists kpi_restatement_causes (
    restatement_id VARCHAR,
    publication_id VARCHAR,
    source_object VARCHAR,           -- raw table: raw_crm.deals
    record_id VARCHAR,
    file_path VARCHAR,               -- relative to the landing folder
    record_number BIGINT,
    cause VARCHAR,                   -- corrected (a new version) | late (first delivered)
    fields_changed VARCHAR           -- comma-separated JSON paths, for a corrected record
);
-- The policy on key KPIs (boussole/restatements.py): refused, then accepted by someone.
create table if not exists restatement_refusals (
    refused_at TIMESTAMP WITH TIME ZONE, refused_in_run VARCHAR,
    kpi_id VARCHAR, grain VARCHAR, period_start DATE, dimension VARCHAR, dimension_value VARCHAR,
    old_value DOUBLE, new_value DOUBLE
);
create table if not exists restatement_acceptances (
    accepted_at TIMESTAMP WITH TIME ZONE, accepted_by VARCHAR, reason VARCHAR,
    kpi_id VARCHAR, grain VARCHAR, period_start DATE, dimension VARCHAR, dimension_value VARCHAR,
    old_value DOUBLE, new_value DOUBLE
);
"""


@dataclass(frozen=True)
class Recording:
    """How a publication is recorded: in the history file `path` (Settings.history_path), for
    the Dagster run `run_id`; with `refuse_key_restatements`, a restatement of a key KPI not
    accepted yet refuses it. `published_at` is now, unless a test says otherwise."""

    path: Path
    run_id: str | None = None
    refuse_key_restatements: bool = False
    published_at: datetime | None = None
    # The runs whose checks audited what is published, newest first, when they are more than
    # the run itself: a re-execution of runs (Dagster's re-execution from failure) and those
    # it re-executes, back to the run that built the warehouse.
    audited_by: tuple[str, ...] = ()

    @property
    def audit_runs(self) -> list[str]:
        return list(self.audited_by) or ([self.run_id] if self.run_id else [])


@dataclass(frozen=True)
class Publication:
    """What a publication is, before it is made."""

    publication_id: str
    published_at: datetime
    run_id: str | None
    code_version: str
    project_digest: str

    @classmethod
    def new(cls, recording: Recording) -> Publication:
        from boussole.audit_scope import project_digest

        return cls(
            publication_id=uuid.uuid4().hex,
            published_at=recording.published_at or datetime.now(UTC),
            run_id=recording.run_id,
            code_version=code_version(),
            project_digest=project_digest(),
        )


def code_version() -> str:
    """`git describe` of the project when it is a clone, else the installed package version."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"git {described}" if described else f"boussole {version('boussole')}"


def ensure_history(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute(_HISTORY_DDL)


def _table_columns(conn: duckdb.DuckDBPyConnection, catalog: str, table: str) -> dict[str, str]:
    return dict(
        conn.execute(
            "select column_name, data_type from duckdb_columns() "
            "where database_name = ? and schema_name = 'main' and table_name = ? "
            "order by column_index",
            [catalog, table],
        ).fetchall()
    )


def _default_catalog(conn: duckdb.DuckDBPyConnection) -> str:
    return conn.execute("select current_database()").fetchone()[0]


def record_served(published_path: Path, history: Path) -> list[str]:
    """Copies into the history the publications the served mart holds and the history lacks
    (its own, after the swap; or any a lost history file no longer has), in one transaction.
    Returns their ids. Recording twice changes nothing."""
    history.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(history)) as conn:
        conn.execute(_HISTORY_DDL)
        if not published_path.exists():
            return []
        conn.execute("attach ? as served (read_only)", [str(published_path)])
        if "publication_id" not in _table_columns(conn, "served", "publications"):
            return []  # published before the history existed
        missing = [
            row[0]
            for row in conn.execute(
                "select publication_id from served.publications where publication_id not in "
                "(select publication_id from main.publications) order by publication_number"
            ).fetchall()
        ]
        if not missing:
            return []
        conn.execute("begin")
        _widen(conn, "publications")
        _widen(conn, "kpi_value_changes")
        for table in RECORDED_TABLES:
            conn.execute(
                f"insert into main.{quote_identifier(table)} by name "
                f"select * from served.{quote_identifier(table)} "
                "where list_contains(?, publication_id)",
                [missing],
            )
        conn.execute("commit")
    return missing


def _widen(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """The history's table gets the columns the served one has and it lacks (kpi_values gained
    a column): older rows hold null there."""
    served = _table_columns(conn, "served", table)
    kept = _table_columns(conn, _default_catalog(conn), table)
    if not kept:
        conn.execute(
            f"create table main.{quote_identifier(table)} as "
            f"select * from served.{quote_identifier(table)} limit 0"
        )
        return
    for column, data_type in served.items():
        if column not in kept:
            conn.execute(
                f"alter table main.{quote_identifier(table)} "
                f"add column {quote_identifier(column)} {data_type}"
            )


@dataclass(frozen=True)
class Staged:
    """What a publication adds to the history, as written into its new mart."""

    publication_id: str
    rows_new: int
    rows_changed: int
    rows_removed: int
    previous_as_of: date | None
    previous_loaded_through: datetime | None


def stage_history(
    conn: duckdb.DuckDBPyConnection,
    history: Path,
    publication: Publication,
    as_of_date: date | None,
    loaded_through: datetime | None,
) -> Staged:
    """In the new mart `conn` (its kpi_values copied): this publication's changes since the
    history's latest state, in the temporary table `new_changes`, and `previous_state` (the
    values the served mart holds, with when each was first and last published). The history
    tables themselves are written by `finish_history` once restatements are known."""
    conn.execute("attach ? as history (read_only)", [str(history)])
    columns = _table_columns(conn, _default_catalog(conn), "kpi_values")
    names = ", ".join(quote_identifier(c) for c in columns)
    key = ", ".join(quote_identifier(c) for c in KEY)
    kept = _table_columns(conn, "history", "kpi_value_changes")
    # A column kpi_values gained since the history began is null in its older versions.
    kept_columns = ", ".join(
        f"c.{quote_identifier(c)}" if c in kept else f"cast(null as {t}) as {quote_identifier(c)}"
        for c, t in columns.items()
    )
    if kept:
        conn.execute(
            f"""
            create temp table previous_state as
            select * exclude (change_kind, recency) from (
                select {kept_columns}, c.change_kind, p.published_at as version_published_at,
                    min(p.published_at) over (partition by {", ".join(f"c.{k}" for k in KEY)})
                        as first_published_at,
                    row_number() over (
                        partition by {", ".join(f"c.{k}" for k in KEY)}
                        order by p.publication_number desc
                    ) as recency
                from history.kpi_value_changes as c
                join history.publications as p using (publication_id)
            )
            where recency = 1 and change_kind <> 'removed'
            """
        )
    else:
        conn.execute(
            "create temp table previous_state as select *, "
            "cast(null as timestamptz) as version_published_at, "
            "cast(null as timestamptz) as first_published_at from main.kpi_values limit 0"
        )
    previous = conn.execute(
        "select as_of_date, loaded_through from history.publications "
        "order by publication_number desc limit 1"
    ).fetchone()
    key_nulls = ", ".join(
        f"p.{quote_identifier(c)}" if c in KEY else f"null as {quote_identifier(c)}"
        for c in columns
    )
    conn.execute(
        f"""
        create temp table new_changes as
        with differing as (
            select {names} from main.kpi_values
            except all
            select {names} from previous_state
        )
        select ? as publication_id,
            case when p.kpi_id is null then 'new' else 'changed' end as change_kind, d.*
        from differing as d
        left join previous_state as p using ({key})
        union all
        select ?, 'removed', {key_nulls}
        from previous_state as p
        anti join main.kpi_values as v using ({key})
        """,
        [publication.publication_id, publication.publication_id],
    )
    counts = dict(
        conn.execute("select change_kind, count(*) from new_changes group by all").fetchall()
    )
    conn.execute(
        """
        create temp table new_publication as
        select ? as publication_id,
            coalesce((select max(publication_number) from history.publications), 0) + 1
                as publication_number,
            ?::timestamptz as published_at, ?::date as as_of_date, ? as run_id,
            ? as code_version, ? as project_digest, ? as pii_key_fingerprint,
            ?::timestamptz as loaded_through,
            (select count(*) from main.kpi_values) as rows_published,
            ?::bigint as rows_new, ?::bigint as rows_changed, ?::bigint as rows_removed
        """,
        [
            publication.publication_id,
            publication.published_at,
            as_of_date,
            publication.run_id,
            publication.code_version,
            publication.project_digest,
            published_key_fingerprint(conn),
            loaded_through,
            counts.get("new", 0),
            counts.get("changed", 0),
            counts.get("removed", 0),
        ],
    )
    return Staged(
        publication.publication_id,
        counts.get("new", 0),
        counts.get("changed", 0),
        counts.get("removed", 0),
        *(previous or (None, None)),
    )


def finish_history(conn: duckdb.DuckDBPyConnection, restatements: int) -> None:
    """Writes into the new mart the history up to and including this publication (staged by
    stage_history, its restatements in the temporary tables new_restatements and new_causes),
    and kpi_value_history, its versions with valid_from and valid_to."""
    conn.execute(
        "create table main.publications as select * from history.publications "
        "union all by name select *, ?::bigint as restatements from new_publication",
        [restatements],
    )
    if _table_columns(conn, "history", "kpi_value_changes"):
        conn.execute(
            "create table main.kpi_value_changes as select * from history.kpi_value_changes "
            "union all by name select * from new_changes"
        )
    else:
        conn.execute("create table main.kpi_value_changes as select * from new_changes")
    for table, new in (
        ("kpi_restatements", "new_restatements"),
        ("kpi_restatement_causes", "new_causes"),
    ):
        conn.execute(
            f"create table main.{table} as select * from history.{table} "
            f"union all by name select * from {new}"
        )
    conn.execute("detach history")
    key = ", ".join(f"c.{k}" for k in KEY)
    # A view: materialised, it would rewrite every version ever published (and sort them) at
    # each publication, a cost that grows with the history instead of with the day's changes.
    conn.execute(
        f"""
        create view main.kpi_value_history as
        select * exclude (change_kind) from (
            select c.*, p.published_at as valid_from, p.as_of_date as published_as_of_date,
                lead(p.published_at) over versions as valid_to
            from main.kpi_value_changes as c
            join main.publications as p using (publication_id)
            window versions as (partition by {key} order by p.publication_number)
        )
        where change_kind <> 'removed'
        """
    )

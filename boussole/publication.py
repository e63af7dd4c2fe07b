"""Write-audit-publish, the publish step: copy the audited marts of the build warehouse into
a new DuckDB file and swap it over the served one atomically.

Readers never see a half-written mart: they keep the file they opened (a consistent
snapshot) until they reopen it, and a refused or failed publication leaves the served file
exactly as it was. The tables of incremental models are published by their changes: the new
file starts as a copy of the served one, whose rows of such a table the build did not rewrite
stay as they are, so a daily publication writes the new rows, not the whole history.

With a `Recording`, the new mart also carries the publication history and
its restatements (boussole/history.py, boussole/restatements.py), and the history file records
the publication once it is served.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from boussole import alerts, restatements
from boussole.history import Publication, Recording, finish_history, record_served, stage_history
from boussole.pii_key import publish_fingerprint
from boussole.sql import quote_identifier
from boussole.trust import annotate_trust
from data_quality.results import copy_quality_results

# The facts and dimensions, and the KPI layer but its steps (int_ tables: periods, source days,
# KPI rows before kpi_values).
PUBLISHED_SCHEMAS = ("marts", "kpi")
# An anomaly raises an alert while its period started within this many days of the as-of
# date: the latest complete weeks and days; older ones close as the window moves on.
ANOMALY_ALERT_DAYS = 14
# Every row an incremental model writes carries the time of its build: the rows of a build
# table stamped after the newest of the served copy are those written since it was published.
CHANGE_STAMP = "_transformed_at"
# The share of free blocks in the served file above which a publication writes it afresh.
MAX_FREE_SHARE = 1 / 3


@dataclass(frozen=True)
class PublishedMart:
    path: Path
    row_counts: dict[str, int]
    # Temporary files of earlier publications killed midway, removed by this one.
    orphans_removed: tuple[Path, ...] = ()
    publication_id: str | None = None
    restatements: int = 0
    # Publications served but not recorded (a crash after the swap), recorded by this one.
    recorded_late: tuple[str, ...] = ()
    # What the history and restatement detection took (the benchmark reports their share).
    history_seconds: float = 0.0
    # The alerts this publication raised (boussole/alerts.py), to notify.
    alerts_raised: tuple[alerts.Alert, ...] = ()
    # How many published values have each trust status (boussole/trust.py).
    trust: dict[str, int] = field(default_factory=dict)
    # The incremental tables published by their changes: how many rows each had written.
    rows_changed: dict[str, int] = field(default_factory=dict)


def publish_marts(
    build_warehouse: Path,
    published_path: Path,
    recording: Recording | None = None,
    checks: Sequence[alerts.CheckResult] | None = None,
    incremental_keys: Mapping[str, Sequence[str]] | None = None,
) -> PublishedMart:
    """With `checks` (the results of the run's checks) and a `recording`, the publication
    also raises its alerts, in the history, and publishes the `alerts` table.
    `incremental_keys` names the tables of incremental models (dbt's delete+insert strategy)
    with their unique key: those are published by their changes when the served mart holds
    them."""
    published_path.parent.mkdir(parents=True, exist_ok=True)
    orphans = remove_orphan_files(published_path)
    history_began = time.perf_counter()
    # The history is compared with what is served: it must hold the served mart first.
    recorded_late = record_served(published_path, recording.path) if recording else []
    history_seconds = time.perf_counter() - history_began
    staging_path = published_path.with_name(f".{published_path.name}.{uuid.uuid4().hex}.tmp")
    row_counts: dict[str, int] = {}
    rows_changed: dict[str, int] = {}
    publication, restated, refused, raised, trust = None, 0, [], [], {}
    try:
        carried = _copy_served(
            published_path,
            staging_path,
            _worth_carrying(published_path, build_warehouse, set(incremental_keys or {})),
        )
        conn = duckdb.connect(str(staging_path))
        try:
            conn.execute("attach ? as build (read_only)", [str(build_warehouse)])
            tables = conn.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_catalog = 'build' and list_contains(?, table_schema) "
                "and not starts_with(table_name, 'int_') order by table_name",
                [list(PUBLISHED_SCHEMAS)],
            ).fetchall()
            for schema, table in tables:
                # Published tables sit in the default schema: analysts query `kpi_values`.
                published = quote_identifier("main", table)
                built = quote_identifier("build", schema, table)
                changed = (
                    _publish_changes(conn, published, built, incremental_keys[table])
                    if table in carried
                    else None
                )
                if changed is None:
                    conn.execute(f"create table {published} as select * from {built}")
                else:
                    rows_changed[table] = changed
                row_counts[table] = conn.execute(f"select count(*) from {published}").fetchone()[0]
            for gone in carried - {table for _, table in tables}:
                conn.execute(f"drop table {quote_identifier('main', gone)}")
            publish_fingerprint(conn, "build")
            extent = _loaded_extent(conn)
            conn.execute("detach build")
            if recording:
                history_began = time.perf_counter()
                publication = Publication.new(recording)
                restated, refused = _stage_history(
                    conn, build_warehouse, recording, publication, *extent
                )
                history_seconds += time.perf_counter() - history_began
                if checks is not None and not refused:
                    raised = _raise_alerts(conn, recording, publication, extent[0], checks)
                    copy_quality_results(recording.path, conn)
                    trust = annotate_trust(
                        conn,
                        restatements.built_catalogue(build_warehouse),
                        publication.publication_id,
                        recording.audit_runs,
                        extent[0],
                    )
            conn.execute("checkpoint")
        finally:
            conn.close()
        if refused:
            restatements.record_refusals(
                recording.path, recording.run_id, refused, publication.published_at
            )
            raise restatements.RestatementsRefused(
                f"{len(refused)} restatement(s) of key KPIs wait for acceptance "
                "(BOUSSOLE_REFUSE_KEY_RESTATEMENTS is on): "
                + "; ".join(restatements.describe(row) for row in refused[:5])
                + ("; ..." if len(refused) > 5 else "")
                + "; accept them with: boussole accept-restatements --reason '...'"
            )
        with staging_path.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(staging_path, published_path)
    finally:
        staging_path.unlink(missing_ok=True)
        _wal_of(staging_path).unlink(missing_ok=True)
    if recording:
        history_began = time.perf_counter()
        record_served(published_path, recording.path)
        history_seconds += time.perf_counter() - history_began
    return PublishedMart(
        path=published_path,
        row_counts=row_counts,
        orphans_removed=orphans,
        publication_id=publication.publication_id if publication else None,
        restatements=restated,
        recorded_late=tuple(recorded_late),
        history_seconds=history_seconds,
        alerts_raised=tuple(raised),
        trust=trust,
        rows_changed=rows_changed,
    )


def _worth_carrying(published_path: Path, build_warehouse: Path, incremental: set[str]) -> set[str]:
    """The tables of `incremental` the served mart holds with the build's columns, and of which
    the build wrote fewer than half the rows since (not a full refresh: copying the table beats
    replacing most of its rows, and leaves no space behind)."""
    if not incremental or not published_path.exists():
        return set()
    worth = set()
    try:
        with duckdb.connect() as conn:
            conn.execute("attach ? as served (read_only)", [str(published_path)])
            conn.execute("attach ? as build (read_only)", [str(build_warehouse)])
            tables = conn.execute(
                "select built.table_name, built.table_schema "
                "from information_schema.tables as built join information_schema.tables as served "
                "on served.table_name = built.table_name and served.table_catalog = 'served' "
                "and served.table_schema = 'main' and served.table_type = 'BASE TABLE' "
                "where built.table_catalog = 'build' and list_contains(?, built.table_schema) "
                "and list_contains(?, built.table_name) and built.table_type = 'BASE TABLE'",
                [list(PUBLISHED_SCHEMAS), sorted(incremental)],
            ).fetchall()
            for table, schema in tables:
                served = quote_identifier("served", "main", table)
                built = quote_identifier("build", schema, table)
                built_columns = _columns(conn, built)
                if _columns(conn, served) != built_columns or CHANGE_STAMP not in dict(
                    built_columns
                ):
                    continue
                stamp = quote_identifier(CHANGE_STAMP)
                since_served = f"{stamp} > (select max({stamp}) from {served})"
                changed, rows = conn.execute(
                    f"select count(*) filter (where {since_served}), count(*) from {built}"
                ).fetchone()
                if changed * 2 < rows:
                    worth.add(table)
    except duckdb.Error:
        return set()  # A served file that cannot be read is not carried.
    return worth


def _columns(conn: duckdb.DuckDBPyConnection, relation: str) -> list[tuple]:
    described = f"select column_name, column_type from (describe {relation})"
    return conn.execute(described).fetchall()


def _copy_served(published_path: Path, staging_path: Path, carry: set[str]) -> set[str]:
    """Starts the new mart at `staging_path` as a copy of the served one holding only its
    tables named in `carry`, and returns those. Nothing is copied (an empty set) when there
    are none, or the served file cannot be read or is mostly free space: the new mart starts
    empty."""
    if not carry:
        return set()
    shutil.copyfile(published_path, staging_path)
    try:
        with duckdb.connect(str(staging_path)) as conn:
            # DuckDB reuses the blocks that dropped tables and deleted rows free, but never
            # gives them back: a file this loose is written afresh, which compacts it.
            free, total = conn.execute(
                "select free_blocks, total_blocks from pragma_database_size()"
            ).fetchone()
            if free > total * MAX_FREE_SHARE:
                raise _StartAfresh
            objects = conn.execute(
                "select table_schema, table_name, table_type = 'VIEW' "
                "from information_schema.tables where table_catalog = current_database()"
            ).fetchall()
            carried = {
                table
                for schema, table, is_view in objects
                if schema == "main" and table in carry and not is_view
            }
            # Views first: they may read the tables dropped after them.
            for schema, table, is_view in sorted(objects, key=lambda o: not o[2]):
                if table not in carried or schema != "main":
                    kind = "view" if is_view else "table"
                    conn.execute(f"drop {kind} {quote_identifier(schema, table)}")
            conn.execute("checkpoint")
    except (duckdb.Error, _StartAfresh):
        staging_path.unlink()
        _wal_of(staging_path).unlink(missing_ok=True)
        return set()
    return carried


class _StartAfresh(Exception):
    """The served mart is not worth carrying on (_copy_served)."""


def _publish_changes(
    conn: duckdb.DuckDBPyConnection, published: str, built: str, key: Sequence[str]
) -> int | None:
    """Brings the served copy `published` of an incremental table to the build's `built` as
    dbt's delete+insert did: the rows the build stamped after the copy's newest replace the
    copy's rows of their keys. Returns how many rows that wrote, or None, the copy dropped, when
    the result does not hold the build's rows (see _row_versions): the table is copied whole."""
    stamp = quote_identifier(CHANGE_STAMP)
    conn.execute("begin transaction")
    conn.execute(
        f"create temporary table changed as select * from {built} "
        f"where {stamp} > (select max({stamp}) from {published})"
    )
    written = conn.execute("select count(*) from changed").fetchone()[0]
    matches = " and ".join(
        f"{published}.{quote_identifier(column)} = changed.{quote_identifier(column)}"
        for column in key
    )
    conn.execute(f"delete from {published} using changed where {matches}")
    conn.execute(f"insert into {published} select * from changed")
    reconciled = _row_versions(conn, published, key) == _row_versions(conn, built, key)
    conn.execute("drop table changed")
    conn.execute("commit" if reconciled else "rollback")
    if reconciled:
        return written
    conn.execute(f"drop table {published}")
    return None


def _row_versions(conn: duckdb.DuckDBPyConnection, relation: str, key: Sequence[str]) -> tuple:
    """How many rows `relation` holds and a sum of the hashes of their keys and stamps. Every
    row a build writes carries a new stamp, so the copy and the build agree on it only when
    they hold the same versions of the same rows: not after rows deleted outside delete+insert,
    nor against a build warehouse older than the served mart (a backup restored)."""
    versions = ", ".join(quote_identifier(column) for column in [*key, CHANGE_STAMP])
    return conn.execute(f"select count(*), sum(hash({versions})) from {relation}").fetchone()


def _loaded_extent(conn: duckdb.DuckDBPyConnection) -> tuple[date | None, datetime | None]:
    """The as-of date of the build attached as `build` (its latest extract date loaded) and
    when it loaded its latest file: what it read, for the history."""
    try:
        return conn.execute(
            "select max(extract_date), max(loaded_at) from build.ingestion.load_manifest "
            "where status = 'loaded'"
        ).fetchone()
    except duckdb.CatalogException:
        return None, None


def _stage_history(
    conn: duckdb.DuckDBPyConnection,
    build_warehouse: Path,
    recording: Recording,
    publication: Publication,
    as_of_date: date | None,
    loaded_through: datetime | None,
) -> tuple[int, list[tuple]]:
    """Writes the history and this publication's restatements into the new mart `conn`; returns
    how many restatements, and those that refuse it (none when it may be published)."""
    staged = stage_history(conn, recording.path, publication, as_of_date, loaded_through)
    restated = restatements.detect(
        conn,
        publication.publication_id,
        publication.run_id,
        publication.published_at,
        staged.previous_as_of,
    )
    causes = restatements.attribute(
        build_warehouse, restatements.restated_keys(conn), staged.previous_loaded_through
    )
    restatements.write_causes(conn, publication.publication_id, causes)
    refused = (
        restatements.unaccepted_key_restatements(conn) if recording.refuse_key_restatements else []
    )
    if not refused:
        finish_history(conn, restated)
    return restated, refused


def _raise_alerts(
    conn: duckdb.DuckDBPyConnection,
    recording: Recording,
    publication: Publication,
    as_of_date: date | None,
    checks: Sequence[alerts.CheckResult],
) -> list[alerts.Alert]:
    """The alerts of the new mart `conn` (thresholds, anomalies, this publication's
    restatements) and of the run's checks, brought up to date in the history and copied into
    the mart; returns those raised now."""
    labels = alerts.kpi_labels(conn)
    conditions = [
        *alerts.threshold_conditions(conn),
        *alerts.restatement_conditions(
            _rows(
                conn,
                "select * from main.kpi_restatements where publication_id = ?",
                [publication.publication_id],
            ),
            labels,
        ),
        *alerts.check_conditions(checks),
    ]
    if as_of_date:
        conditions += alerts.anomaly_conditions(
            _rows(conn, "select * from main.kpi_anomalies"),
            since=as_of_date - timedelta(days=ANOMALY_ALERT_DAYS),
            labels=labels,
        )
    with duckdb.connect(str(recording.path)) as history:
        raised = alerts.update_alerts(
            history, recording.run_id, publication.published_at, conditions
        )
        alerts.copy_alerts(history, conn)
    return raised


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    """The rows of a query as dicts of Python values (dates as dates, not pandas')."""
    cursor = conn.execute(sql, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _wal_of(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def remove_orphan_files(published_path: Path) -> tuple[Path, ...]:
    """Removes the temporary files (`.<name>.<id>.tmp` and its `.wal`) that publications
    killed midway left beside the served mart. A publication in progress in another process
    holds DuckDB's lock on its file: that one is left alone."""
    removed = []
    pattern = f".{published_path.name}.*.tmp"
    temporaries = {*published_path.parent.glob(pattern)}
    temporaries |= {wal.with_suffix("") for wal in published_path.parent.glob(pattern + ".wal")}
    for temporary in sorted(temporaries):
        if temporary.exists() and _locked(temporary):
            continue
        for path in (temporary, _wal_of(temporary)):
            if path.exists():
                path.unlink()
                removed.append(path)
    return tuple(removed)


def _locked(database: Path) -> bool:
    """Whether another process holds the file open with DuckDB (a POSIX write lock)."""
    try:
        descriptor = os.open(database, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(descriptor)
    return False


def kpi_summary_table(published_path: Path, months: int = 3) -> str:
    """The company-wide monthly values of the key KPIs (tier key in the catalogue) over the
    last `months`, with the status of the latest month, as text."""
    conn = duckdb.connect(str(published_path), read_only=True)
    try:
        rows = conn.execute(
            """
            with ranked as (
                select kpi_id, period_start, value, status,
                    row_number() over (partition by kpi_id order by period_start desc) as recency
                from kpi_values
                where grain = 'month' and dimension = 'all'
            )
            select ranked.kpi_id, catalogue.category, period_start, value, status, recency
            from ranked
            join kpi_catalogue as catalogue using (kpi_id)
            where recency <= ? and catalogue.tier = 'key'
            """,
            [months],
        ).fetchall()
    finally:
        conn.close()
    periods = sorted({period for _, _, period, _, _, _ in rows})
    values = {(kpi, period): value for kpi, _, period, value, _, _ in rows}
    latest_status = {kpi: status for kpi, _, _, _, status, recency in rows if recency == 1}
    kpis = sorted({(category, kpi) for kpi, category, *_ in rows})
    header = (
        f"{'KPI (company, month)':<28}"
        + "".join(f"{p:%Y-%m}".rjust(16) for p in periods)
        + "  status"
    )
    lines = [header, "-" * len(header)]
    for _, kpi in kpis:
        cells = [values.get((kpi, period)) for period in periods]
        lines.append(
            f"{kpi:<28}"
            + "".join(("" if v is None else f"{v:,.2f}").rjust(16) for v in cells)
            + f"  {latest_status.get(kpi) or ''}"
        )
    return "\n".join(lines)

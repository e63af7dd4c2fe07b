"""Restatements: a value of a complete period that a publication changes beyond its tolerance.

Each publication compares its new kpi_values with the values the history last published
(boussole/history.py). A value is a restatement when its period was already complete for the
publication before (its last day before that publication's as-of date) and it moved by more
than the KPI's `restatement_tolerance` (kpi_catalogue, relative to the published value; by
default 0 for counts, 0.0001 for money, 0.001 otherwise) or appeared or vanished (for an
additive KPI, a missing row is 0). It is kept in `kpi_restatements` with its causes in
`kpi_restatement_causes`, published, and reported (`boussole run`, Dagster metadata).

Causes, a first version: the records of the KPI's facts (for a combination, of its inputs'
facts) that were loaded since the publication before, traced to the raw record through the
nearest model upstream of the fact that carries `_source_file` and `_record_number` on the
fact's primary key (boussole/poison.py), whose row falls in the restated value: its date
(`computation.date`) in the period, for a flow; its slice column equal to the slice's value.
A record with an earlier version in raw is `corrected`, with the JSON fields whose values
differ from that version; one without is `late` (first delivered since). A stock
(`at_period_end`) is not filtered by date; a fact without primary key names no record.

Policy: with BOUSSOLE_REFUSE_KEY_RESTATEMENTS=1, a restatement of a KPI of tier `key` refuses
the publication until `boussole accept-restatements --reason ...` records who accepted it and
why (history tables restatement_refusals and restatement_acceptances, append-only); a later
publication that makes the same change (same old and new value) then publishes it, with the
acceptance in kpi_restatements.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from boussole.history import KEY, ensure_history
from boussole.poison import LINEAGE_COLUMNS, _columns, _deliveries, _parents, _quoted, _relation

# Enough to act on: more records than this rarely explain one figure each.
MAX_CAUSES = 20
# Below this, a difference between two doubles is rounding, whatever the tolerance.
_ROUNDING = 1e-9

_SAME_CHANGE = " and ".join(
    [f"a.{k} is not distinct from r.{k}" for k in (*KEY, "old_value", "new_value")]
)


class RestatementsRefused(Exception):
    """Restatements of key KPIs wait for `boussole accept-restatements`; nothing published."""


def detect(
    conn: duckdb.DuckDBPyConnection,
    publication_id: str,
    run_id: str | None,
    detected_at: datetime,
    previous_as_of: date | None,
) -> int:
    """The temporary table new_restatements, in the new mart `conn` staged by
    history.stage_history (history attached): changed values of periods complete at the
    previous publication, beyond tolerance, with their acceptances. Returns their number."""
    key = ", ".join(KEY)
    r_key = ", ".join(f"r.{k}" for k in KEY)
    conn.execute(
        f"""
        create temp table new_restatements as
        with compared as (
            select c.kpi_id, c.grain, c.period_start, c.dimension, c.dimension_value,
                coalesce(c.period_end, p.period_end) as period_end, catalogue.tier,
                p.value as old_value, c.value as new_value,
                coalesce(catalogue.restatement_tolerance, 0) as tolerance,
                p.first_published_at, p.version_published_at as old_published_at,
                -- an additive KPI's missing row is 0: a slice appearing is no restatement
                case when catalogue.is_additive then coalesce(p.value, 0) else p.value end as o,
                case when catalogue.is_additive then coalesce(c.value, 0) else c.value end as n
            from new_changes as c
            left join previous_state as p using ({key})
            left join main.kpi_catalogue as catalogue using (kpi_id)
        )
        select ? || '-' || row_number() over (order by {r_key}) as restatement_id,
            ? as publication_id, ? as detected_in_run, ?::timestamptz as detected_at,
            {r_key}, r.tier, r.period_end, r.old_value, r.new_value, r.tolerance,
            r.first_published_at, r.old_published_at,
            a.accepted_by, a.accepted_at, a.reason as acceptance_reason,
            cast(null as varchar) as causes
        from compared as r
        left join (
            select * from history.restatement_acceptances
            qualify row_number() over (partition by {key}, old_value, new_value
                                       order by accepted_at desc) = 1
        ) as a on {_SAME_CHANGE}
        where r.period_end < ?
            and ((o is null) <> (n is null) or abs(n - o) > greatest(tolerance * abs(o), ?))
        """,
        [publication_id, publication_id, run_id, detected_at, previous_as_of, _ROUNDING],
    )
    return conn.execute("select count(*) from new_restatements").fetchone()[0]


def unaccepted_key_restatements(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(key..., old_value, new_value) of the new restatements of tier-key KPIs not accepted,
    months and company totals first (the refusal names the first five)."""
    return conn.execute(
        f"select {', '.join(KEY)}, old_value, new_value from new_restatements "
        "where tier = 'key' and accepted_by is null "
        f"order by grain = 'month' desc, dimension = 'all' desc, {', '.join(KEY)}"
    ).fetchall()


def record_refusals(history: Path, run_id: str | None, refused: list[tuple], at: datetime) -> None:
    ensure_history(history)
    with duckdb.connect(str(history)) as conn:
        conn.executemany(
            "insert into restatement_refusals values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(at, run_id, *row) for row in refused],
        )


def accept_refused(history: Path, reason: str, by: str | None = None) -> list[tuple]:
    """Accepts every refused restatement not accepted yet, as the OS user `by`, for `reason`.
    Returns what was accepted: (key..., old_value, new_value)."""
    ensure_history(history)
    with duckdb.connect(str(history)) as conn:
        return conn.execute(
            f"""
            insert into restatement_acceptances
            select distinct current_timestamp, ?, ?, {", ".join(f"r.{k}" for k in KEY)},
                r.old_value, r.new_value
            from restatement_refusals as r
            where not exists (select 1 from restatement_acceptances as a where {_SAME_CHANGE})
            returning {", ".join(KEY)}, old_value, new_value
            """,
            [by or getpass.getuser(), reason],
        ).fetchall()


def describe(row: tuple) -> str:
    kpi_id, grain, period_start, dimension, dimension_value, old, new = row
    where = "" if dimension == "all" else f", {dimension} {dimension_value}"
    return f"{kpi_id} ({grain} {period_start}{where}): {old} -> {new}"


# --- causes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where a KPI's values come from: a fact, its date column (flows) and slice columns."""

    fact: str
    date_column: str | None
    slices: tuple[tuple[str, str], ...]


def _manifest(build_warehouse: Path) -> Mapping[str, Any] | None:
    """The manifest of the warehouse's last successful build, else the project's."""
    from boussole.dbt_manifest import MANIFEST_PATH

    for path in (build_warehouse.parent / "dbt_state" / "manifest.json", MANIFEST_PATH):
        if path.exists():
            return json.loads(path.read_text())
    return None


def _sources(catalogue: Mapping[str, Mapping], kpi_id: str) -> list[_Source]:
    kpi = catalogue.get(kpi_id)
    if kpi is None:
        return []
    computation = kpi["computation"]
    if computation["type"] == "combination":
        return [
            source
            for input_id in computation["inputs"].values()
            for source in _sources(catalogue, input_id.split("@")[0])
        ]
    date_column = computation.get("date") if computation["type"] == "aggregate" else None
    slices = tuple(sorted((computation.get("slices") or {}).items()))
    return [_Source(computation["fact"], date_column, slices)]


def attribute(
    build_warehouse: Path,
    restatements: list[tuple],
    loaded_since: datetime | None,
) -> list[tuple]:
    """The cause rows (restatement_id, source_object, record_id, file_path, record_number,
    cause, fields_changed) of `restatements` (restatement_id, key...), read from the build
    warehouse: see the module's docstring."""
    manifest = _manifest(build_warehouse)
    if not restatements or manifest is None or loaded_since is None:
        return []
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    kpis = (nodes.get("kpi_catalogue") or {}).get("config", {}).get("meta", {}).get("kpis", [])
    catalogue = {kpi["id"]: kpi for kpi in kpis}
    causes: list[tuple] = []
    with duckdb.connect(str(build_warehouse), read_only=True) as conn:
        new_files = [
            path
            for (path,) in conn.execute(
                "select distinct file_path from ingestion.load_manifest "
                "where status = 'loaded' and loaded_at > ?",
                [loaded_since],
            ).fetchall()
        ]
        if not new_files:
            return []
        candidates: dict[_Source, list[tuple]] = {}
        described: dict[tuple[str, int], tuple | None] = {}
        for restatement_id, kpi_id, _grain, start, dimension, value, end in restatements:
            named: dict[tuple[str, int], None] = {}  # ordered, without repeats
            for source in _sources(catalogue, kpi_id):
                if source not in candidates:
                    candidates[source] = _candidates(conn, manifest, nodes, source, new_files)
                columns = [name for name, _ in source.slices]
                for file_path, record_number, fact_date, *slice_values in candidates[source]:
                    if source.date_column and not (
                        fact_date is not None and start <= fact_date <= end
                    ):
                        continue
                    if dimension != "all" and (
                        dimension not in columns or slice_values[columns.index(dimension)] != value
                    ):
                        continue
                    named.setdefault((file_path, record_number))
            for record in list(named)[:MAX_CAUSES]:
                if record not in described:
                    described[record] = _describe(conn, *record)
                if described[record] is not None:
                    causes.append((restatement_id, *described[record]))
    return causes


def _candidates(
    conn: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    source: _Source,
    new_files: list[str],
) -> list[tuple]:
    """(file, record number, fact date, slice values...) of the rows of the source's fact whose
    record (through the nearest lineage model) came in one of `new_files`."""
    fact = nodes.get(source.fact)
    if fact is None:
        return []
    key = list(fact.get("primary_key") or [])
    date_expression = (
        f"cast(f.{_quoted(source.date_column)} as date)"
        if source.date_column
        else ("cast(null as date)")
    )
    slices = "".join(f", cast(f.{_quoted(column)} as varchar)" for _, column in source.slices)
    found: list[tuple] = []
    try:
        for lineage in _record_models(conn, manifest, fact, key):
            on = " and ".join(f"l.{_quoted(k)} = f.{_quoted(k)}" for k in key)
            joined = f"join {_relation(lineage)} as l on {on}" if lineage is not fact else ""
            records = (
                "l._source_file, l._record_number"
                if joined
                else ("f._source_file, f._record_number")
            )
            found += conn.execute(
                f"select distinct {records}, {date_expression}{slices} "
                f"from {_relation(fact)} as f {joined} "
                f"where list_contains(?, {records.split(',')[0]})",
                [new_files],
            ).fetchall()
    except duckdb.Error:
        return found  # a fact not built as the catalogue says: no cause named from it
    return found


def _record_models(
    conn: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    fact: Mapping[str, Any],
    key: list[str],
) -> list[Mapping[str, Any]]:
    """Every model upstream of `fact` (itself included) that carries the lineage columns and
    its primary key `key`: a fact's rows may come from several objects (a ticket and its
    metrics), each named by its own records."""
    wanted = {*LINEAGE_COLUMNS, *key}
    found, seen, stack = [], set(), [fact["unique_id"]]
    while stack:
        unique_id = stack.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        node = manifest["nodes"][unique_id]
        if key and wanted <= set(_columns(conn, node)):
            found.append(node)
        stack.extend(_parents(node))
    return sorted(found, key=lambda node: node["unique_id"])


def _describe(conn: duckdb.DuckDBPyConnection, file_path: str, record_number: int) -> tuple | None:
    """(raw table, record id, file, record number, corrected | late, fields changed)."""
    for _, landing_object in _deliveries(conn, file_path):
        table = landing_object.raw_table
        id_path = "$." + (landing_object.version[0] if landing_object.version else "id")
        found = conn.execute(
            f"select record ->> ?, record::varchar from {table} "
            "where _source_file = ? and _record_number = ?",
            [id_path, file_path, record_number],
        ).fetchone()
        if found is None:
            continue
        record_id, text = found
        versions = (
            conn.execute(
                f"select _source_file, _record_number, record::varchar from {table} "
                "where record ->> ? = ? order by _extract_date, _source_file, _record_number",
                [id_path, record_id],
            ).fetchall()
            if record_id is not None
            else []
        )
        position = (
            [(f, n) for f, n, _ in versions].index((file_path, record_number)) if (versions) else 0
        )
        if position == 0:
            return (table, record_id, file_path, record_number, "late", None)
        changed = conn.execute(
            """
            select string_agg(ltrim(fullkey, '$.'), ', ' order by fullkey) from (
                select fullkey, value::varchar as value from json_tree(?::json)
                where type not in ('OBJECT', 'ARRAY')
            ) as new full join (
                select fullkey, value::varchar as value from json_tree(?::json)
                where type not in ('OBJECT', 'ARRAY')
            ) as old using (fullkey)
            where new.value is distinct from old.value
            """,
            [text, versions[position - 1][2]],
        ).fetchone()[0]
        return (table, record_id, file_path, record_number, "corrected", changed)
    return None


def write_causes(conn: duckdb.DuckDBPyConnection, publication_id: str, causes: list[tuple]) -> None:
    """The temporary table new_causes, and each restatement's causes in words."""
    conn.execute(
        "create temp table new_causes (restatement_id VARCHAR, publication_id VARCHAR, "
        "source_object VARCHAR, record_id VARCHAR, file_path VARCHAR, record_number BIGINT, "
        "cause VARCHAR, fields_changed VARCHAR)"
    )
    if causes:
        conn.executemany(
            "insert into new_causes values (?, ?, ?, ?, ?, ?, ?, ?)",
            [(c[0], publication_id, *c[1:]) for c in causes],
        )
    conn.execute(
        """
        update new_restatements as r set causes = c.text
        from (
            select restatement_id, string_agg(
                source_object || ' id ' || coalesce(record_id, '?') || ' (' || file_path || ':'
                    || record_number || ', ' || cause
                    || coalesce(': ' || fields_changed, '') || ')',
                '; ' order by file_path, record_number) as text
            from new_causes group by restatement_id
        ) as c
        where r.restatement_id = c.restatement_id
        """
    )


def restated_keys(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(restatement_id, kpi_id, grain, period_start, dimension, dimension_value, period_end)."""
    return conn.execute(
        f"select restatement_id, {', '.join(KEY)}, period_end from new_restatements order by all"
    ).fetchall()


def report(published_path: Path, limit: int = 20) -> list[str]:
    """The restatements the served mart's publication made, in words (run summary, Dagster)."""
    with duckdb.connect(str(published_path), read_only=True) as conn:
        published = conn.execute(
            "select count(*) from duckdb_tables() where table_name = 'kpi_restatements'"
        ).fetchone()[0]
        if not published:
            return []
        rows = conn.execute(
            f"""
            select {", ".join(KEY)}, old_value, new_value, accepted_by, acceptance_reason, causes
            from main.kpi_restatements
            where publication_id = (
                select publication_id from main.publications
                order by publication_number desc limit 1
            )
            order by tier = 'key' desc, grain = 'month' desc, dimension = 'all' desc,
                {", ".join(KEY)}
            """
        ).fetchall()
    lines = []
    for *change, accepted_by, reason, causes in rows[:limit]:
        accepted = f"; accepted by {accepted_by}: {reason}" if accepted_by else ""
        lines.append(f"{describe(tuple(change))}{accepted}; causes: {causes or 'none named'}")
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more (table kpi_restatements)")
    return lines

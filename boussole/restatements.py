"""Restatements: a value of a complete period that a publication changes beyond its tolerance.

Each publication compares its new kpi_values with the values the history last published
(boussole/history.py). A value is a restatement when its period was already complete for the
publication before (its last day before that publication's as-of date) and it moved by more
than the KPI's `restatement_tolerance` (kpi_catalogue, relative to the published value; by
default 0 for counts, 0.0001 for money, 0.001 otherwise) or appeared or vanished (for an
additive KPI, a missing row is 0). It is kept in `kpi_restatements` with its causes in
`kpi_restatement_causes`, published, and reported (`boussole run`, Dagster metadata).

Causes: records delivered since the publication before (their file loaded after it), read in
the build warehouse. For each restated value, the rows of the KPI's fact that lie in it (for a
combination, its inputs' facts; an input `kpi@previous` in the period before): a flow's row
whose date (`computation.date`) is in the period, a stock's spell that covers the period's last
day (the record's state then); and whose slice value is the slice's (null is '(not set)', as
the KPI rows say). Named for them:
- the row's own record: through the fact's lineage columns `_source_file` and `_record_number`
  (a stock's spells name the version each comes from), else through every model upstream that
  carries them and the fact's primary key (boussole/poison.py);
- for a value in money (unit currency, or one that reads a `_reporting` column), an FX rate:
  of the row's currency, from the rate's date to that currency's next known rate on one of the
  row's dates (the one its amount converts at is among them), the row passing the KPI's filter;
- for a slice taken from another model (the team from dim_owner by owner_id: a model upstream
  keyed by columns of the fact that holds the slice column, under its name or prefixed by its
  key's entity, company_country from country), that model's record (the owner) when it moved a
  row of the period into the slice (the row is in it, and the record's version before did not
  hold the slice's value) or out of it (the version before held the value, this one does not).
A record with an earlier version in raw is `corrected`, with the JSON fields whose values
differ from that version; one without is `late` (first delivered since). What is not named:
README, "History, as-of values and restatements".

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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from boussole.history import KEY, ensure_history
from boussole.ingestion.contracts import LANDING_OBJECTS
from boussole.poison import (
    LINEAGE_COLUMNS,
    _deliveries,
    _parents,
    _quoted,
    _relation,
    _upstream_sources,
)

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

# The FX rates feed (extract contract): a currency's rate on a date holds until the next known
# rate of that currency (int_fx__rate_periods).
FX_RATES = next(o for o in LANDING_OBJECTS if (o.source, o.name) == ("spend", "fx_rates"))
# What the KPI rows call the slice of a row whose slice column is null (kpi_dimension_value).
NOT_SET = "(not set)"
# Date columns of a fact that no amount is converted at: when its record was extracted, and
# when its spell ends.
_NOT_RATE_DATES = ("_extract_date", "state_until")


@dataclass(frozen=True)
class _Source:
    """Where a KPI's values come from: a fact, its date column (a flow; None for a stock, whose
    rows are spells of states from state_from to state_until), its slice columns, whether its
    value reads amounts converted at FX rates (unit currency, or a `_reporting` column), and
    the filter of the rows it counts (`where`), when a rate cannot change it."""

    fact: str
    date_column: str | None
    slices: tuple[tuple[str, str], ...]
    converts: bool = False
    where: str | None = None

    @property
    def records(self) -> _Source:
        """The same rows, whatever the KPI reads of them: the key of their records' rows."""
        return _Source(self.fact, self.date_column, self.slices)

    def holds(self, row: _Row, start: date, end: date) -> bool:
        """Whether the row counts in the period: a flow's date in it, a stock's spell covering
        its last day (the record's state at the period end)."""
        if self.date_column is None:
            return (
                row.state_from is not None
                and row.state_from <= end
                and (row.state_until is None or row.state_until > end)
            )
        return row.fact_date is not None and start <= row.fact_date <= end


@dataclass(frozen=True)
class _Row:
    """A fact row behind a candidate cause: the raw record (file, record number), the row's
    date (a flow) or spell (a stock), and its slice values as the KPI rows label them."""

    record: tuple[str, int]
    fact_date: date | None
    state_from: date | None
    state_until: date | None
    slices: tuple[str, ...]


@dataclass(frozen=True)
class _Record:
    """A raw record and the version of the same record delivered before it (None: late)."""

    table: str
    record_id: str | None
    file_path: str
    record_number: int
    text: str
    before: str | None


class _Warehouse:
    """The build warehouse, read only, with the columns of its relations read once."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._columns: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in conn.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "order by schema_name, table_name, column_index"
        ).fetchall():
            self._columns.setdefault((schema, table), []).append(column)

    def execute(self, sql: str, params: object = None) -> duckdb.DuckDBPyConnection:
        return self.conn.execute(sql, params)

    def columns(self, node: Mapping[str, Any]) -> list[str]:
        name = node.get("identifier") if node["resource_type"] == "source" else node["alias"]
        return self._columns.get((node["schema"], name), [])


def _manifest(build_warehouse: Path) -> Mapping[str, Any] | None:
    """The manifest of the warehouse's last successful build, else the project's."""
    from boussole.dbt_manifest import MANIFEST_PATH

    for path in (build_warehouse.parent / "dbt_state" / "manifest.json", MANIFEST_PATH):
        if path.exists():
            return json.loads(path.read_text())
    return None


def _model_nodes(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def _catalogue_of(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    kpis = (nodes.get("kpi_catalogue") or {}).get("config", {}).get("meta", {}).get("kpis", [])
    return {kpi["id"]: kpi for kpi in kpis}


def built_catalogue(build_warehouse: Path) -> dict[str, Mapping[str, Any]]:
    """The KPI catalogue entries the warehouse was last built with, by KPI id."""
    manifest = _manifest(build_warehouse)
    return {} if manifest is None else _catalogue_of(_model_nodes(manifest))


def kpi_facts(catalogue: Mapping[str, Mapping], kpi_id: str) -> set[str]:
    """The facts a KPI's values are computed from (for a combination, its inputs')."""
    return {source.fact for source, _ in _sources(catalogue, kpi_id)}


def _sources(
    catalogue: Mapping[str, Mapping], kpi_id: str, previous: bool = False
) -> list[tuple[_Source, bool]]:
    """The sources of a KPI's value, each with whether it is read in the period before (an
    input `kpi@previous` of a combination)."""
    kpi = catalogue.get(kpi_id)
    if kpi is None:
        return []
    computation = kpi["computation"]
    if computation["type"] == "combination":
        return [
            found
            for input_id in computation["inputs"].values()
            for found in _sources(
                catalogue, input_id.split("@")[0], previous or input_id.endswith("@previous")
            )
        ]
    date_column = computation.get("date") if computation["type"] == "aggregate" else None
    slices = tuple(sorted((computation.get("slices") or {}).items()))
    expressions = " ".join(
        str(computation.get(part) or "")
        for part in ("numerator", "denominator", "value", "secondary_value")
    )
    converts = kpi.get("unit") == "currency" or "_reporting" in expressions
    # A filter on converted amounts may count other rows at another rate; a dbt var is unknown.
    where = computation.get("where")
    if where and ("_reporting" in where or "${" in where):
        where = None
    return [(_Source(computation["fact"], date_column, slices, converts, where), previous)]


def _period_before(grain: str, start: date) -> tuple[date, date]:
    """The period of the same grain just before the one starting on `start`."""
    if grain in ("day", "week"):
        return start - timedelta(days=1 if grain == "day" else 7), start - timedelta(days=1)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    index = start.year * 12 + start.month - 1 - months
    return date(index // 12, index % 12 + 1, 1), start - timedelta(days=1)


def attribute(
    build_warehouse: Path,
    restatements: list[tuple],
    loaded_since: datetime | None,
) -> list[tuple]:
    """The cause rows (restatement_id, source_object, record_id, file_path, record_number,
    cause, fields_changed) of `restatements` (restatement_id, key..., period_end), read from
    the build warehouse: see the module's docstring."""
    manifest = _manifest(build_warehouse)
    if not restatements or manifest is None or loaded_since is None:
        return []
    nodes = _model_nodes(manifest)
    catalogue = _catalogue_of(nodes)
    rates_until = max(row[-1] for row in restatements)
    causes: list[tuple] = []
    with duckdb.connect(str(build_warehouse), read_only=True) as connection:
        conn = _Warehouse(connection)
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
        own: dict[_Source, tuple[_Row, ...]] = {}
        by_slice: dict[tuple[_Source, str], tuple[_Row, ...]] = {}
        rates: dict[_Source, tuple[_Row, ...]] = {}
        records: dict[tuple[str, int], _Record | None] = {}
        described: dict[tuple[str, int], tuple] = {}

        def record(key: tuple[str, int]) -> _Record | None:
            if key not in records:
                records[key] = _record(conn, *key)
            return records[key]

        for restatement in restatements:
            restatement_id, kpi_id, grain, period_start, dimension, value, period_end = restatement
            named: dict[tuple[str, int], None] = {}  # ordered, without repeats
            for source, previous in _sources(catalogue, kpi_id):
                start, end = (
                    _period_before(grain, period_start) if previous else (period_start, period_end)
                )
                if source.records not in own:
                    own[source.records] = _own_rows(
                        conn, manifest, nodes, source.records, new_files
                    )
                if source not in rates:
                    rates[source] = _rate_rows(
                        conn, manifest, nodes, source, new_files, rates_until
                    )
                columns = [name for name, _ in source.slices]
                if dimension != "all" and dimension not in columns:
                    continue
                position = columns.index(dimension) if dimension != "all" else None
                for row in (*own[source.records], *rates[source]):
                    if source.holds(row, start, end) and (
                        position is None or row.slices[position] == value
                    ):
                        named.setdefault(row.record)
                if position is None:
                    continue
                if (source.records, dimension) not in by_slice:
                    by_slice[source.records, dimension] = _slice_rows(
                        conn, manifest, nodes, source.records, dimension, new_files
                    )
                held: dict[tuple[str, int], bool] = {}  # record: a row of it is in the slice
                for row in by_slice[source.records, dimension]:
                    if source.holds(row, start, end):
                        held[row.record] = held.get(row.record, False) or (
                            row.slices[position] == value
                        )
                for key, moved_in in held.items():
                    if _moves(record(key), value, moved_in):
                        named.setdefault(key)
            for key in list(named)[:MAX_CAUSES]:
                if key not in described and record(key) is not None:
                    described[key] = _described(conn, record(key))
                if key in described:
                    causes.append((restatement_id, *described[key]))
    return causes


def _own_rows(
    conn: _Warehouse,
    manifest: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    source: _Source,
    new_files: list[str],
) -> tuple[_Row, ...]:
    """The source's fact rows whose own record (through the nearest lineage model) came in
    one of `new_files`."""
    fact = nodes.get(source.fact)
    if fact is None:
        return ()
    key = list(fact.get("primary_key") or [])
    try:
        lineages = [(key, lineage) for lineage in _record_models(conn, manifest, fact, key)]
    except duckdb.Error:
        return ()
    return _rows_through(conn, fact, source, lineages, new_files)


def _slice_rows(
    conn: _Warehouse,
    manifest: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    source: _Source,
    dimension: str,
    new_files: list[str],
) -> tuple[_Row, ...]:
    """The source's fact rows joined to a record, come in one of `new_files`, of a model the
    slice's column is taken from (an owner's record for the team; _slice_models)."""
    fact = nodes.get(source.fact)
    column = dict(source.slices).get(dimension)
    if fact is None or column is None:
        return ()
    try:
        models = _slice_models(conn, manifest, fact, column)
    except duckdb.Error:
        return ()
    return _rows_through(conn, fact, source, models, new_files)


def _rows_through(
    conn: _Warehouse,
    fact: Mapping[str, Any],
    source: _Source,
    lineages: list[tuple[list[str], Mapping[str, Any]]],
    new_files: list[str],
) -> tuple[_Row, ...]:
    """The fact's rows whose record in each (key, lineage model) came in one of `new_files`:
    read on the fact itself when it carries the lineage, else joined to the model on key."""
    row = _row_columns(source)
    found: tuple[_Row, ...] = ()
    for key, lineage in lineages:
        if lineage is fact:
            sql = (
                f"select distinct f._source_file, f._record_number, {row} "
                f"from {_relation(fact)} as f where list_contains(?, f._source_file)"
            )
        else:
            sql = _joined(fact, lineage, key, row)
        found += _rows(conn, sql, [new_files])
    return found


def _rows(conn: _Warehouse, sql: str, params: list) -> tuple[_Row, ...]:
    """The rows of a query of (file, record number, date, state from, state until, slices...)."""
    try:
        found = conn.execute(sql, params).fetchall()
    except duckdb.Error:
        return ()  # a fact not built as the catalogue says: no cause named from it
    return tuple(_Row((f, n), d, s, u, tuple(slices)) for f, n, d, s, u, *slices in found)


def _row_columns(source: _Source) -> str:
    """The fact row's date (a flow), spell (a stock) and slice values, of the fact `f`."""
    date_column = (
        f"cast(f.{_quoted(source.date_column)} as date)"
        if source.date_column
        else "cast(null as date)"
    )
    spell = (
        "cast(null as date), cast(null as date)"
        if source.date_column
        else "cast(f.state_from as date), cast(f.state_until as date)"
    )
    slices = "".join(
        f", coalesce(cast(f.{_quoted(column)} as varchar), '{NOT_SET}')"
        for _, column in source.slices
    )
    return f"{date_column}, {spell}{slices}"


def _joined(fact: Mapping[str, Any], lineage: Mapping[str, Any], key: list[str], row: str) -> str:
    """The records of `lineage` (with lineage columns) come in new files, with the fact rows
    they join on `key`."""
    on = " and ".join(f"l.{_quoted(k)} = f.{_quoted(k)}" for k in key)
    return (
        f"select distinct l._source_file, l._record_number, {row} "
        f"from {_relation(fact)} as f join {_relation(lineage)} as l on {on} "
        "where list_contains(?, l._source_file)"
    )


def _record_models(
    conn: _Warehouse,
    manifest: Mapping[str, Any],
    fact: Mapping[str, Any],
    key: list[str],
) -> list[Mapping[str, Any]]:
    """The models whose lineage columns name the records of `fact`'s rows: the fact itself
    when it carries them (a stock's spells name the version each comes from), else every
    model upstream that carries them and its primary key `key` (a fact's rows may come from
    several objects, a ticket and its metrics, each named by its own records)."""
    if set(LINEAGE_COLUMNS) <= set(conn.columns(fact)):
        return [fact]
    wanted = {*LINEAGE_COLUMNS, *key}
    found, seen, stack = [], set(), [fact["unique_id"]]
    while key and stack:
        unique_id = stack.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        node = manifest["nodes"][unique_id]
        if wanted <= set(conn.columns(node)):
            found.append(node)
        stack.extend(_parents(node))
    return sorted(found, key=lambda node: node["unique_id"])


def _own_models(
    conn: _Warehouse, manifest: Mapping[str, Any], fact: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The models of the fact's own records, whose columns are the record's own: those that
    name them (_record_models), or when that is the fact itself or none, the nearest models
    upstream with the lineage columns (a deal's versions, for its spells)."""
    models = _record_models(conn, manifest, fact, list(fact.get("primary_key") or []))
    if models and models != [fact]:
        return models
    seen, frontier = {fact["unique_id"]}, [p for p in _parents(fact) if p.startswith("model.")]
    while frontier:
        nodes = [manifest["nodes"][unique_id] for unique_id in frontier]
        nearest = [n for n in nodes if set(LINEAGE_COLUMNS) <= set(conn.columns(n))]
        if nearest:
            return nearest
        seen.update(frontier)
        frontier = sorted(
            {p for n in nodes for p in _parents(n) if p.startswith("model.") and p not in seen}
        )
    return []


def _slice_models(
    conn: _Warehouse,
    manifest: Mapping[str, Any],
    fact: Mapping[str, Any],
    column: str,
) -> list[tuple[list[str], Mapping[str, Any]]]:
    """(key, lineage model) of the records of each model upstream of `fact` that the slice
    column is taken from: a column the fact's own records do not have (_own_models), held by a
    model keyed by columns of the fact (not the fact's own key, nor the column itself) under
    its name or prefixed by its key's entity (company_country from country, in a model keyed
    by company_id), whose records are not the fact's own (a ticket's priority in its states
    comes from the ticket's versions, not from the ticket's current record)."""
    own = _own_models(conn, manifest, fact)
    if any(column in conn.columns(model) for model in own):
        return []
    own_ids = {model["unique_id"] for model in own}
    fact_columns = set(conn.columns(fact))
    own_key = set(fact.get("primary_key") or [])
    found: dict[str, tuple[list[str], Mapping[str, Any]]] = {}
    seen, stack = set(), list(_parents(fact))
    while stack:
        unique_id = stack.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        node = manifest["nodes"][unique_id]
        stack.extend(_parents(node))
        key = list(node.get("primary_key") or [])
        if not key or set(key) == own_key or column in key or not set(key) <= fact_columns:
            continue
        names = {column} | {
            column.removeprefix(k.removesuffix("_id") + "_") for k in key if k.endswith("_id")
        }
        if not names & set(conn.columns(node)):
            continue
        lineages = _record_models(conn, manifest, node, key)
        if own_ids & {lineage["unique_id"] for lineage in lineages}:
            continue
        for lineage in lineages:
            found.setdefault(f"{lineage['unique_id']} {key}", (key, lineage))
    return [found[name] for name in sorted(found)]


def _reads_fx_rates(manifest: Mapping[str, Any], fact: Mapping[str, Any]) -> bool:
    return any(
        (s["source_name"], s["name"]) == (FX_RATES.source, FX_RATES.name)
        for s in _upstream_sources(manifest, fact["unique_id"])
    )


def _rate_rows(
    conn: _Warehouse,
    manifest: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    source: _Source,
    new_files: list[str],
    rates_until: date,
) -> tuple[_Row, ...]:
    """The rows the source's value counts (its `where`) that are converted at an FX rate that
    came in one of `new_files`, dated on or before `rates_until` (the last restated period's
    end), with the rate's record: the row's currency, and a date of the row (any date column:
    the one its amount converts at is among them) from the rate's date to the currency's next
    known rate, the days that rate applies to."""
    fact = nodes.get(source.fact)
    if not source.converts or fact is None or not _reads_fx_rates(manifest, fact):
        return ()
    try:
        fact_columns = conn.columns(fact)
        dates = [
            name
            for (name,) in conn.execute(
                "select column_name from duckdb_columns() where schema_name = ? "
                "and table_name = ? and data_type = 'DATE' order by column_index",
                [fact["schema"], fact["alias"]],
            ).fetchall()
            if name not in _NOT_RATE_DATES
        ]
    except duckdb.Error:
        return ()
    currency = next((c for c in ("currency_original", "currency") if c in fact_columns), None)
    if currency is None or not dates:
        return ()
    within = " or ".join(
        f"(f.{_quoted(d)} >= r.rate_date and (r.next_date is null or f.{_quoted(d)} < r.next_date))"
        for d in dates
    )
    return _rows(
        conn,
        f"""
        with rates as (
            select upper(record ->> '$.currency') as currency,
                try_cast(record ->> '$.date' as date) as rate_date, _source_file, _record_number
            from {FX_RATES.raw_table}
        ),
        periods as (
            select currency, rate_date,
                lead(rate_date) over (partition by currency order by rate_date) as next_date
            from (select distinct currency, rate_date from rates where rate_date is not null)
        ),
        new_rates as (
            select r._source_file, r._record_number, r.currency, r.rate_date, p.next_date
            from rates as r join periods as p using (currency, rate_date)
            where list_contains(?, r._source_file) and r.rate_date <= ?
        )
        select distinct r._source_file, r._record_number, {_row_columns(source)}
        from (select * from {_relation(fact)} where {source.where or "true"}) as f
        join new_rates as r on upper(cast(f.{_quoted(currency)} as varchar)) = r.currency
        where {within}
        """,
        [new_files, rates_until],
    )


def _record(conn: _Warehouse, file_path: str, record_number: int) -> _Record | None:
    """The raw record at file_path:record_number, with the version of the same record (same
    id; for an FX rate, same currency and date) delivered before it."""
    for _, landing_object in _deliveries(conn, file_path):
        table = landing_object.raw_table
        if landing_object is FX_RATES:
            paths = ["$.currency", "$.date"]
        else:
            paths = ["$." + (landing_object.version[0] if landing_object.version else "id")]
        found = conn.execute(
            f"select [{', '.join('record ->> ?' for _ in paths)}], record::varchar from {table} "
            "where _source_file = ? and _record_number = ?",
            [*paths, file_path, record_number],
        ).fetchone()
        if found is None:
            continue
        identity, text = found
        if any(part is None for part in identity):
            return _Record(table, None, file_path, record_number, text, None)
        same = " and ".join("record ->> ? = ?" for _ in paths)
        versions = conn.execute(
            f"select _source_file, _record_number, record::varchar from {table} where {same} "
            "order by _extract_date, _source_file, _record_number",
            [part for pair in zip(paths, identity, strict=True) for part in pair],
        ).fetchall()
        position = [(f, n) for f, n, _ in versions].index((file_path, record_number))
        before = versions[position - 1][2] if position else None
        return _Record(table, " ".join(identity), file_path, record_number, text, before)
    return None


def _described(conn: _Warehouse, record: _Record) -> tuple:
    """(raw table, record id, file, record number, corrected | late, fields changed)."""
    where = (record.table, record.record_id, record.file_path, record.record_number)
    if record.before is None:
        return (*where, "late", None)
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
        [record.text, record.before],
    ).fetchone()[0]
    return (*where, "corrected", changed)


def _moves(record: _Record | None, value: str, moved_in: bool) -> bool:
    """Whether a record of the model a slice is taken from moved rows into the slice `value`
    (a row of the period is in it now, and its version before did not hold the value) or out
    of it (its version before held the value, this one does not)."""
    if record is None:
        return False
    before = _values(record.before) if record.before is not None else set()
    if moved_in and value not in before:
        return True
    return value in before and value not in _values(record.text)


def _values(text: str) -> set[str]:
    """Every scalar value of a JSON record, as text."""
    found: set[str] = set()
    stack = [json.loads(text)]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, bool):
            found.add("true" if value else "false")
        elif value is not None:
            found.add(str(value))
    return found


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

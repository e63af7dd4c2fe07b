"""Poison records: records that pass ingestion but fail the dbt build, named by the failed build
and quarantined by hand (`boussole quarantine`).

Ingestion checks each record on its own. Some failures only show downstream, across records (a
deal in a currency with no FX rate leaves its converted amount null, and a not_null test fails)
or in a record an older, looser gate let in. The record stays in raw, so every later build
would fail on it again. When a build fails, `trace_failed_build` reads that invocation's dbt
artifacts (run_results.json, manifest.json) and names the raw records behind each failed node:

- a failed data test: the rows its compiled SQL returns are matched to rows of the model it
  tests (on the columns they share, else the test's column), then to the nearest model upstream
  with the lineage columns _source_file and _record_number, on the tested model's primary key;
- a node that cannot convert a value ("Could not convert string 'X' to ..."): the records of the
  raw tables upstream of it (its dbt sources) that hold X, with the field.

`quarantine_records` moves named records from raw to ingestion.quarantine, keeps read = loaded +
quarantined per file in the load manifest, and drops the incremental models that read the
object: dbt builds a missing incremental model from all raw rows, so the next build holds
nothing of the record (the other models are rebuilt by every build anyway).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from boussole.ingestion.contracts import LANDING_OBJECTS, LandingObject
from boussole.ingestion.loader import masked_raw_text
from boussole.sql import quote_identifier

LINEAGE_COLUMNS = ("_source_file", "_record_number")
# Written before the reason in ingestion.quarantine: the loader did not quarantine it.
BY_HAND = "quarantined by hand: "
# The `where` of a test that checks the rows a build wrote (dbt_project/macros/test_scope.sql):
# a scope, not a filter on the model.
_WRITTEN_BY_THIS_RUN = "__written_by_this_run__"
# Enough to act on; a test failing on more rows than this is rarely a single bad record.
MAX_NAMED = 20
_FAILING_ROWS = 1000
_CONVERSION = (
    re.compile(r"Could not convert string (?P<q>['\"])(?P<value>.*?)(?P=q) to "),
    re.compile(r"with value (?P<q>['\"])(?P<value>.*?)(?P=q) can't be cast"),
)


@dataclass(frozen=True, order=True)
class RecordRef:
    """A landed record: its file (relative to the landing folder) and record number."""

    file_path: str
    record_number: int

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        path, _, number = text.rpartition(":")
        if not path or not number.isdigit() or int(number) < 1:
            raise ValueError(
                f"{text!r} is not <file>:<record number> (crm/2026-01-05/deals.jsonl:3)"
            )
        return cls(path, int(number))

    def __str__(self) -> str:
        return f"{self.file_path}:{self.record_number}"


@dataclass(frozen=True)
class Suspect:
    """A raw record behind a failed dbt node."""

    file_path: str
    record_number: int
    raw_table: str
    record_id: str | None
    node: str  # the failed test or model: "test not_null_fct_deals_amount_reporting"
    detail: str  # what failed on this record: "fails on its row of fct_deals (deal_id 8)"
    field: str | None = None

    @property
    def record(self) -> RecordRef:
        return RecordRef(self.file_path, self.record_number)

    def describe(self) -> str:
        identity = f"{self.raw_table} id {self.record_id}" if self.record_id else self.raw_table
        field = f", field {self.field}" if self.field else ""
        return f"record {self.record} ({identity}{field}): {self.node} {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quarantine_command(suspects: list[Suspect]) -> str:
    """The command that quarantines `suspects` (one field named only when they share it)."""
    fields = {s.field for s in suspects}
    field = fields.pop() if len(fields) == 1 else None
    nodes = sorted({s.node for s in suspects})
    return shlex.join(
        [
            "boussole",
            "quarantine",
            *(str(s.record) for s in suspects),
            *("--reason", f"fails {', '.join(nodes)}"),
            *(["--field", field] if field else []),
        ]
    )


def report_lines(suspects: list[Suspect]) -> list[str]:
    """What a user reads about the records behind a failed build, and what to do."""
    if not suspects:
        return []
    return [
        *(s.describe() for s in suspects),
        "if that is bad data, quarantine it (README, 'When a run fails because of a record'), "
        f"then run again: {quarantine_command(suspects)}",
    ]


# --- naming the records behind a failed build -----------------------------------------------


def trace_failed_build(warehouse: Path, target_path: Path) -> list[Suspect]:
    """The raw records behind the failed nodes of the dbt invocation whose artifacts are in
    `target_path`, read from `warehouse` once dbt has exited. Best effort: a node that cannot
    be traced names no record (its failure is reported anyway)."""
    try:
        results = json.loads((target_path / "run_results.json").read_text())["results"]
        manifest = json.loads((target_path / "manifest.json").read_text())
    except (OSError, ValueError, KeyError):
        return []
    failed = [r for r in results if r.get("status") in ("fail", "error")]
    if not failed:
        return []
    suspects: dict[RecordRef, Suspect] = {}
    try:
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            for result in failed:
                node = manifest["nodes"].get(result["unique_id"])
                if node is None:
                    continue
                try:
                    found = _conversion_suspects(conn, manifest, node, result) or _test_suspects(
                        conn, manifest, node, result
                    )
                except duckdb.Error:
                    continue
                for suspect in found:
                    suspects.setdefault(suspect.record, suspect)
    except duckdb.Error:
        pass  # the warehouse cannot be opened: what was found so far
    return sorted(suspects.values(), key=lambda s: s.record)[:MAX_NAMED]


def _parents(node: Mapping[str, Any]) -> list[str]:
    return node.get("depends_on", {}).get("nodes", [])


def _relation(node: Mapping[str, Any]) -> str:
    name = node.get("identifier") if node["resource_type"] == "source" else node["alias"]
    return quote_identifier(node["schema"], name)


def _columns(conn: duckdb.DuckDBPyConnection, node: Mapping[str, Any]) -> list[str]:
    name = node.get("identifier") if node["resource_type"] == "source" else node["alias"]
    return [
        column
        for (column,) in conn.execute(
            "select column_name from duckdb_columns() where schema_name = ? and table_name = ? "
            "order by column_index",
            [node["schema"], name],
        ).fetchall()
    ]


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _test_suspects(
    conn: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    test: Mapping[str, Any],
    result: Mapping[str, Any],
) -> list[Suspect]:
    """The records behind the rows a failed data test returns."""
    model = manifest["nodes"].get(test.get("attached_node") or "")
    if test["resource_type"] != "test" or result["status"] != "fail" or model is None:
        return []
    failing = f"(select * from ({result['compiled_code']}) limit {_FAILING_ROWS})"
    failing_columns = [d[0] for d in conn.execute(f"select * from {failing} limit 0").description]
    model_columns = _columns(conn, model)
    pairs = [(c, c) for c in failing_columns if c in model_columns]
    if not pairs and test.get("column_name") in model_columns and failing_columns:
        # dbt's generic tests rename the tested column (unique_field, value_field, from_field).
        pairs = [(test["column_name"], failing_columns[0])]
    if not pairs:
        return []
    tested = _relation(model)
    where = (test.get("config") or {}).get("where")
    if where and where.strip() != _WRITTEN_BY_THIS_RUN:
        tested = f"(select * from {tested} where {where})"
    match = " and ".join(f"m.{_quoted(a)} is not distinct from f.{_quoted(b)}" for a, b in pairs)
    matched = (
        f"(select m.* from {tested} as m where exists (select 1 from {failing} as f where {match}))"
    )
    key = list(model.get("primary_key") or [])
    keys = "".join(f", m.{_quoted(k)}" for k in key)
    on = " and ".join(f"a.{_quoted(k)} = m.{_quoted(k)}" for k in key)
    selects = [
        f"select m._source_file, m._record_number{keys} from {matched} as m"
        if node is model
        else f"select a._source_file, a._record_number{keys} "
        f"from {_relation(node)} as a join {matched} as m on {on}"
        for node in _lineage(conn, manifest, model, key)
    ]
    if not selects:
        return []
    rows = conn.execute(
        f"select distinct * from ({' union all '.join(selects)}) order by all limit {MAX_NAMED}"
    ).fetchall()
    suspects = []
    for file_path, record_number, *key_values in rows:
        keys = ", ".join(f"{k} {v}" for k, v in zip(key, key_values, strict=True))
        detail = f"fails on its row of {model['name']}" + (f" ({keys})" if keys else "")
        suspects.append(_named(conn, RecordRef(file_path, record_number), test, detail))
    return [s for s in suspects if s is not None]


def _lineage(
    conn: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    model: Mapping[str, Any],
    key: list[str],
) -> list[Mapping[str, Any]]:
    """The models nearest `model` upstream (itself included) with the lineage columns and, to
    join them to `model`'s rows, its primary key `key` (a fact may union several of them)."""
    if set(LINEAGE_COLUMNS) <= set(_columns(conn, model)):
        return [model]
    seen, frontier = set(), [model["unique_id"]]
    while frontier:
        nearest = [
            manifest["nodes"][unique_id]
            for unique_id in frontier
            if key and {*LINEAGE_COLUMNS, *key} <= set(_columns(conn, manifest["nodes"][unique_id]))
        ]
        if nearest:
            return nearest
        seen.update(frontier)
        frontier = sorted(
            {
                parent
                for unique_id in frontier
                for parent in _parents(manifest["nodes"][unique_id])
                if parent.startswith("model.") and parent not in seen
            }
        )
    return []


def _conversion_suspects(
    conn: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    node: Mapping[str, Any],
    result: Mapping[str, Any],
) -> list[Suspect]:
    """The raw records, upstream of a node that failed to convert a value, holding it."""
    message = result.get("message") or ""
    found = next((m for m in (p.search(message) for p in _CONVERSION) if m), None)
    if found is None:
        return []
    value = found["value"]
    suspects = []
    for source in _upstream_sources(manifest, node["unique_id"]):
        if not {"record", *LINEAGE_COLUMNS} <= set(_columns(conn, source)):
            continue
        # A text search first (cheap at any size), then the JSON value itself, with its path.
        rows = conn.execute(
            f"select distinct r._source_file, r._record_number, t.fullkey from {_relation(source)} "
            "as r, json_tree(r.record) as t where contains(r.record::varchar, ?) "
            "and t.atom is not null and t.atom ->> '$' = ? order by all limit ?",
            [json.dumps(value)[1:-1], value, MAX_NAMED],
        ).fetchall()
        for file_path, record_number, path in rows:
            field = path.removeprefix("$.") if path else None
            suspect = _named(
                conn,
                RecordRef(file_path, record_number),
                node,
                f"cannot convert its value {value!r} ({_first_error_line(message)})",
                field,
            )
            if suspect is not None:
                suspects.append(suspect)
    return suspects


def _upstream_sources(manifest: Mapping[str, Any], unique_id: str) -> list[Mapping[str, Any]]:
    seen, stack, sources = set(), [unique_id], []
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in manifest["sources"]:
            sources.append(manifest["sources"][current])
        elif current in manifest["nodes"]:
            stack.extend(_parents(manifest["nodes"][current]))
    return sorted(sources, key=lambda s: s["unique_id"])


def _deliveries(conn: duckdb.DuckDBPyConnection, file_path: str) -> list[tuple[str, LandingObject]]:
    """(sha256, object) of each loaded delivery of a landing file."""
    objects = {(o.source, o.name): o for o in LANDING_OBJECTS}
    rows = conn.execute(
        "select file_sha256, source, object from ingestion.load_manifest "
        "where file_path = ? and status = 'loaded' order by loaded_at",
        [file_path],
    ).fetchall()
    return [(sha, objects[(s, o)]) for sha, s, o in rows if (s, o) in objects]


def _first_error_line(message: str) -> str:
    """The line of a dbt error message that says what went wrong (not where)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return next((line for line in lines if "Error:" in line), lines[0] if lines else "")[:200]


def _named(
    conn: duckdb.DuckDBPyConnection,
    record: RecordRef,
    node: Mapping[str, Any],
    detail: str,
    field: str | None = None,
) -> Suspect | None:
    """The suspect with its raw table and vendor id, if the record is in raw."""
    for _, landing_object in _deliveries(conn, record.file_path):
        table = landing_object.raw_table
        row = conn.execute(
            f"select record ->> '$.id' from {table} where _source_file = ? and _record_number = ?",
            [record.file_path, record.record_number],
        ).fetchone()
        if row is not None:
            return Suspect(
                record.file_path,
                record.record_number,
                table,
                row[0],
                f"{node['resource_type']} {node['name']}",
                detail,
                field,
            )
    return None


# --- quarantine by hand -----------------------------------------------------------------------


# A delivery of the load manifest (a checksum may also name a duplicate elsewhere).
_LOADED_DELIVERY = "file_sha256 = ? and file_path = ? and status = 'loaded'"


class UnknownRecord(ValueError):
    """A named record is neither in raw nor in quarantine: nothing was changed."""


@dataclass(frozen=True)
class Quarantined:
    """A record moved to quarantine (or found there already), and its file's counts after."""

    record: RecordRef
    raw_table: str
    record_id: str | None
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    already: bool = False


def incremental_models_reading(
    manifest: Mapping[str, Any], raw_tables: Iterable[str]
) -> list[Mapping[str, Any]]:
    """The incremental models downstream of the dbt sources of `raw_tables` (schema.table)."""
    wanted = {
        unique_id
        for unique_id, source in manifest["sources"].items()
        if f"{source['schema']}.{source['identifier']}" in set(raw_tables)
    }
    children: dict[str, set[str]] = {}
    for unique_id, node in manifest["nodes"].items():
        for parent in _parents(node):
            children.setdefault(parent, set()).add(unique_id)
    seen, stack = set(), list(wanted)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return sorted(
        (
            manifest["nodes"][u]
            for u in seen
            if manifest["nodes"][u]["resource_type"] == "model"
            and manifest["nodes"][u]["config"].get("materialized") == "incremental"
        ),
        key=lambda n: n["unique_id"],
    )


def quarantine_records(
    conn: duckdb.DuckDBPyConnection,
    records: list[RecordRef],
    reason: str,
    manifest: Mapping[str, Any],
    field: str | None = None,
) -> tuple[list[Quarantined], list[str]]:
    """Moves `records` from raw to ingestion.quarantine in one transaction (the reason marked as
    set by hand), with their files' counts in the load manifest, and drops the incremental
    models of `manifest` (the project's dbt manifest) that read them. Returns what was done
    and the models dropped. Raises UnknownRecord, changing nothing, for a record that is
    neither in raw nor in quarantine."""
    conn.execute("begin transaction")
    try:
        done = [_quarantine_one(conn, record, BY_HAND + reason, field) for record in records]
        moved_from = {q.raw_table for q in done if not q.already}
        dropped = []
        for model in incremental_models_reading(manifest, moved_from):
            conn.execute(f"drop table if exists {_relation(model)}")
            dropped.append(f"{model['schema']}.{model['alias']}")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return done, dropped


def _quarantine_one(
    conn: duckdb.DuckDBPyConnection, record: RecordRef, reason: str, field: str | None
) -> Quarantined:
    deliveries = _deliveries(conn, record.file_path)
    if not deliveries:
        raise UnknownRecord(f"{record.file_path} is not a loaded file of ingestion.load_manifest")
    for sha256, landing_object in deliveries:
        table = landing_object.raw_table
        row = conn.execute(
            f"select record ->> '$.id', {masked_raw_text(landing_object, 'record::varchar')}, "
            f"_extract_date from {table} "
            "where _file_sha256 = ? and _source_file = ? and _record_number = ?",
            [sha256, record.file_path, record.record_number],
        ).fetchone()
        if row is None:
            continue
        record_id, raw_text, extract_date = row
        conn.execute(
            "insert into ingestion.quarantine (file_sha256, file_path, source, object, "
            "extract_date, record_number, field, reason, raw_text) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                sha256,
                record.file_path,
                landing_object.source,
                landing_object.name,
                extract_date,
                record.record_number,
                field,
                reason,
                raw_text,
            ],
        )
        conn.execute(
            f"delete from {table} "
            "where _file_sha256 = ? and _source_file = ? and _record_number = ?",
            [sha256, record.file_path, record.record_number],
        )
        conn.execute(
            "update ingestion.load_manifest set rows_loaded = rows_loaded - 1, "
            f"rows_quarantined = rows_quarantined + 1 where {_LOADED_DELIVERY}",
            [sha256, record.file_path],
        )
        return _counted(conn, record, table, sha256, record_id, already=False)
    for sha256, landing_object in deliveries:
        found = conn.execute(
            "select raw_text from ingestion.quarantine "
            "where file_sha256 = ? and file_path = ? and record_number = ?",
            [sha256, record.file_path, record.record_number],
        ).fetchone()
        if found is not None:
            record_id = conn.execute("select try(?::json ->> '$.id')", [found[0]]).fetchone()[0]
            return _counted(conn, record, landing_object.raw_table, sha256, record_id, already=True)
    raise UnknownRecord(f"{record}: no record {record.record_number} of that file in raw")


def _counted(
    conn: duckdb.DuckDBPyConnection,
    record: RecordRef,
    table: str,
    sha256: str,
    record_id: str | None,
    already: bool,
) -> Quarantined:
    read, loaded, quarantined = conn.execute(
        "select rows_read, rows_loaded, rows_quarantined from ingestion.load_manifest "
        f"where {_LOADED_DELIVERY}",
        [sha256, record.file_path],
    ).fetchone()
    return Quarantined(record, table, record_id, read, loaded, quarantined, already)


def quarantine_summary(done: list[Quarantined], dropped: list[str]) -> list[str]:
    """What `boussole quarantine` did, in words."""
    lines = []
    for q in done:
        identity = f"{q.raw_table} id {q.record_id}" if q.record_id else q.raw_table
        lines.append(
            f"{'Already in quarantine' if q.already else 'Quarantined'}: {q.record} ({identity}); "
            f"{q.record.file_path}: read {q.rows_read} = loaded {q.rows_loaded} + "
            f"quarantined {q.rows_quarantined}"
        )
    if dropped:
        lines.append(
            "Dropped the incremental models that read it, so that the next build rebuilds them "
            f"from raw: {', '.join(dropped)}"
        )
    return lines

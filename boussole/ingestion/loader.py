"""Set-based loading of landed files into the DuckDB build warehouse.

Every file is read by DuckDB's own readers (no Python loop over records), once per content
checksum; the JSON-lines files of one object are read together in one scan. Each record
lands in its raw table with its lineage (file, record number), or in the quarantine table
with the field and the reason; the load manifest records, per file, rows read, loaded and
quarantined (read = loaded + quarantined), and the files that could not be read at all.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import groupby
from pathlib import Path

import duckdb
import pyarrow

from boussole.ingestion.contracts import (
    DEFAULT_PLAUSIBLE_DATES,
    LANDING_OBJECTS,
    SOURCES,
    FieldRule,
    IgnoredEntry,
    LandedFile,
    LandingObject,
    PlausibleDates,
    extract_dates,
    landed_files,
)

RAW_COLUMNS = """
    record JSON NOT NULL,
    _extract_date DATE NOT NULL,
    _source_file VARCHAR NOT NULL,
    _record_number BIGINT NOT NULL,
    _file_sha256 VARCHAR NOT NULL
"""

INGESTION_DDL = """
create schema if not exists ingestion;
-- One row per delivery: a file (path and content) read, or an entry of the landing folder that
-- was not read, with why. A file delivered again under its name with other content replaces
-- the earlier delivery (status replaced, its rows gone from raw); both rows stay.
create table if not exists ingestion.load_manifest (
    file_path VARCHAR NOT NULL,       -- relative to the landing folder
    file_sha256 VARCHAR,              -- null for an entry that was not read (ignored)
    source VARCHAR,
    object VARCHAR,
    extract_date DATE,
    file_format VARCHAR,
    status VARCHAR NOT NULL,          -- loaded | failed | duplicate | replaced | ignored
    rows_read BIGINT NOT NULL DEFAULT 0,
    rows_loaded BIGINT NOT NULL DEFAULT 0,
    rows_quarantined BIGINT NOT NULL DEFAULT 0,
    failure_reason VARCHAR,           -- why failed, ignored, a duplicate or replaced
    loaded_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT current_timestamp
);
-- Every landed file the loader has read, by name, size and modification time when it was read:
-- a file that still has them was read already, so a run need not read its extract date again.
create table if not exists ingestion.landing_reads (
    file_path VARCHAR PRIMARY KEY,    -- relative to the landing folder
    size_bytes BIGINT NOT NULL,
    modified_ns BIGINT NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    checked_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT current_timestamp
);
create table if not exists ingestion.quarantine (
    file_sha256 VARCHAR NOT NULL,
    file_path VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    object VARCHAR NOT NULL,
    extract_date DATE NOT NULL,
    record_number BIGINT NOT NULL,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    raw_text VARCHAR
);
"""

# The records read from the files of one object, before validation (a temp table).
_LANDED_RECORDS = pyarrow.schema(
    [
        ("source_file", pyarrow.string()),
        ("file_sha256", pyarrow.string()),
        ("extract_date", pyarrow.date32()),
        ("record_number", pyarrow.int64()),
        ("raw_text", pyarrow.string()),
        ("read_error", pyarrow.string()),
    ]
)

_JSON_LINES_READER = (
    "read_csv({path}, columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(1), "
    "quote = '', escape = '', auto_detect = false, compression = 'auto') with ordinality"
)


@dataclass(frozen=True)
class FileLoad:
    """What happened to one landed file."""

    file: LandedFile
    relative_path: str
    sha256: str
    status: str  # loaded | failed | duplicate | already_loaded
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    failure_reason: str | None = None
    # The checksum of the earlier delivery of this path, which this one replaces.
    replaces: str | None = None


class _Unreadable(Exception):
    """The file as a whole cannot be read (truncated, wrong format, empty)."""


def ensure_ingestion_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the manifest, quarantine and every raw table, so models never miss a source."""
    _upgrade_manifest(conn)
    conn.execute(INGESTION_DDL)
    for landing_object in LANDING_OBJECTS:
        conn.execute(f"create schema if not exists {landing_object.raw_schema}")
        conn.execute(f"create table if not exists {landing_object.raw_table} ({RAW_COLUMNS})")


def _upgrade_manifest(conn: duckdb.DuckDBPyConnection) -> None:
    """A warehouse whose manifest had one row per content (keyed by checksum) gets the manifest
    of deliveries, with its rows."""
    keyed_by_content = conn.execute(
        "select count(*) from duckdb_constraints() where schema_name = 'ingestion' "
        "and table_name = 'load_manifest' and constraint_type = 'PRIMARY KEY'"
    ).fetchone()[0]
    if not keyed_by_content:
        return
    conn.execute("alter table ingestion.load_manifest rename to load_manifest_by_content")
    conn.execute(INGESTION_DDL)
    columns = (
        "file_path, file_sha256, source, object, extract_date, file_format, status, "
        "rows_read, rows_loaded, rows_quarantined, failure_reason, loaded_at"
    )
    conn.execute(
        f"insert into ingestion.load_manifest ({columns}) "
        f"select {columns} from ingestion.load_manifest_by_content"
    )
    conn.execute("drop table ingestion.load_manifest_by_content")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_files(
    conn: duckdb.DuckDBPyConnection,
    files: Iterable[LandedFile],
    landing_dir: Path,
    window: PlausibleDates = DEFAULT_PLAUSIBLE_DATES,
) -> list[FileLoad]:
    ensure_ingestion_tables(conn)
    ordered = sorted(files, key=lambda f: (f.landing_object.name, f.extract_date, f.path.name))
    loads: list[FileLoad] = []
    for _, group in groupby(ordered, key=lambda f: f.landing_object):
        loads.extend(_load_object_files(conn, list(group), landing_dir, window))
    return loads


# --- reading ----------------------------------------------------------------------------------


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


MASKED = "(personal: not kept)"


def masked_raw_text(landing_object: LandingObject, raw_text: str) -> str:
    """SQL: the text `raw_text` (an SQL expression) of a record of `landing_object` to keep in
    quarantine, its personal fields masked; a record of an object with personal fields that is
    no JSON object cannot be masked field by field, and is not kept at all."""
    if not landing_object.personal:
        return raw_text
    patches = []
    for path in landing_object.personal:
        patch: object = MASKED
        for key in reversed(path.split(".")):
            patch = {key: patch}
        # Only a field the record holds (and not null) is masked: none is added.
        patches.append(
            f"case when coalesce(json_type({raw_text}, {_sql_string('$.' + path)}), "
            f"'NULL') <> 'NULL' then {_sql_string(json.dumps(patch))} else '{{}}' end"
        )
    not_kept = (
        f"(not kept: a {landing_object.source} {landing_object.name} record that is not a JSON "
        "object may hold personal data; read it in its file at its record number)"
    )
    return (
        f"case when coalesce(try(json_type({raw_text})) = 'OBJECT', false) "
        f"then json_merge_patch({raw_text}, {', '.join(patches)})::varchar "
        f"else {_sql_string(not_kept)} end"
    )


def _is_utf8(path: Path) -> bool:
    """True when the file decodes as UTF-8 (read in blocks; a BOM is fine)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _single_file_records(landed: LandedFile) -> str:
    """(record_number, raw_text) for every record of a file that is not JSON lines."""
    path = _sql_string(str(landed.path))
    if landed.file_format == "json_document":
        key = landed.landing_object.records_key
        records_path = f"$.{key}[*]" if key else "$[*]"
        return (
            f"with doc as (select content::json as body from read_text({path})) "
            "select ordinality as record_number, record::varchar as raw_text "
            f"from doc, unnest(json_extract(body, '{records_path}')) with ordinality as r(record)"
        )
    if landed.file_format == "csv":
        encoding = "utf-8" if _is_utf8(landed.path) else "latin-1"
        reader = f"read_csv({path}, all_varchar = true, header = true, encoding = '{encoding}')"
    else:
        reader = f"read_parquet({path})"
    # Each row becomes a JSON object, so every format reaches raw in the same shape.
    return (
        f"with src as (select * from {reader} with ordinality) "
        "select src.ordinality as record_number, to_json(rec)::varchar as raw_text "
        "from src, lateral (select src.* exclude (ordinality)) as rec"
    )


def _read_into_landed_records(
    conn: duckdb.DuckDBPyConnection, files: list[tuple[LandedFile, str, str]]
) -> dict[str, str]:
    """Append the records of `files` (file, relative path, sha256) to landed_records.
    Returns the files that could not be read, with the reason, by sha256."""
    unreadable: dict[str, str] = {}
    json_lines = [entry for entry in files if entry[0].file_format == "jsonl"]
    if json_lines:
        try:
            _append_json_lines(conn, json_lines)
        except duckdb.Error:
            # One bad file fails the whole scan: read them one by one to find it.
            for entry in json_lines:
                try:
                    _append_json_lines(conn, [entry])
                except duckdb.Error as error:
                    if "invalid unicode" in str(error).lower():
                        _append_json_lines_by_line(conn, *entry)
                    else:
                        unreadable[entry[2]] = _first_line(error)
    for landed, relative, sha256 in files:
        if landed.file_format == "jsonl":
            continue
        try:
            conn.execute(
                "insert into landed_records select ?, ?, ?, record_number, raw_text, null "
                f"from ({_single_file_records(landed)})",
                [relative, sha256, landed.extract_date],
            )
        except duckdb.Error as error:
            unreadable[sha256] = _first_line(error)
    return unreadable


def _append_json_lines(
    conn: duckdb.DuckDBPyConnection, files: list[tuple[LandedFile, str, str]]
) -> None:
    # A scan per file, in one statement: each file's ordinality is its line number, the
    # record's number, and empty lines (not records) are left out without renumbering. (A
    # line of spaces is quarantined as blank: testing every line for it doubles the read.)
    scans = " union all ".join(
        f"select {_sql_string(relative)}, '{sha256}', DATE '{landed.extract_date}', "
        f"ordinality, line, null "
        f"from {_JSON_LINES_READER.format(path=_sql_string(str(landed.path)))} "
        "where line is not null and line <> chr(13)"
        for landed, relative, sha256 in files
    )
    conn.execute(f"insert into landed_records {scans}")


def _append_json_lines_by_line(
    conn: duckdb.DuckDBPyConnection, landed: LandedFile, relative: str, sha256: str
) -> None:
    """A JSON-lines file that is not all UTF-8, read line by line: a line that does not decode
    is a record with a read error (quarantined), and costs only itself."""
    opener = gzip.open if landed.path.name.lower().endswith(".gz") else open
    with opener(landed.path, "rb") as stream:
        lines = stream.read().split(b"\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if line in (b"", b"\r"):  # empty lines are not records, as in _append_json_lines
            continue
        try:
            text, error = line.decode("utf-8"), None
        except UnicodeDecodeError as failure:
            text = line.decode("utf-8", errors="backslashreplace")
            byte = line[failure.start : failure.start + 1].hex()
            error = f"not UTF-8: byte 0x{byte} at position {failure.start + 1} of the line"
        rows.append((relative, sha256, landed.extract_date, number, text.rstrip("\r"), error))
    table = pyarrow.Table.from_pylist(
        [dict(zip(_LANDED_RECORDS.names, row, strict=True)) for row in rows],
        schema=_LANDED_RECORDS,
    )
    conn.register("lines_read_by_python", table)
    try:
        conn.execute("insert into landed_records select * from lines_read_by_python")
    finally:
        conn.unregister("lines_read_by_python")


# --- validation -------------------------------------------------------------------------------


def _expected(wording: str, got: str) -> str:
    return f"{_sql_string(f'expected {wording}, got ')} || {got}"


@dataclass(frozen=True)
class _Field:
    """SQL expressions of one field of a record, as the rules read it: its text, whether it is
    missing, the first character of its JSON (what the object and array rules look at: no
    parse of a whole array), and, for the rules that need them, its number and instant."""

    text: str
    missing: str
    lead: str = "null"
    number: str | None = None
    instant: str | None = None

    @classmethod
    def of(cls, rule: FieldRule, json: str) -> _Field:
        """The expressions over a JSON value, written out (an element in a lambda)."""
        return cls(
            f"({json} ->> '$')",
            f"({json} is null or {json}::varchar = 'null')",
            f"left({json}::varchar, 1)",
            _number(rule, f"({json} ->> '$')"),
            _instant(rule, f"({json} ->> '$')"),
        )

    @classmethod
    def of_text(cls, rule: FieldRule, text: str) -> _Field:
        """The expressions over a scalar value read as text (null when missing)."""
        return cls(text, f"({text} is null)", "null", _number(rule, text), _instant(rule, text))

    @property
    def got(self) -> str:
        return f"left(coalesce({self.text}, 'nothing'), 80)"


def _number(rule: FieldRule, text: str) -> str | None:
    return f"try_cast({text} as double)" if rule.kind in ("integer", "number") else None


# How each dated kind reads its text, and how it is described when it cannot be read.
_DATED = {
    "timestamp": (
        "case when regexp_full_match({t}, '[0-9]+') then try(to_timestamp({t}::double / 1000)) "
        "else try_cast({t} as timestamp with time zone) end",
        "an ISO-8601 timestamp or epoch milliseconds",
    ),
    "epoch_us": (
        "case when regexp_full_match({t}, '[0-9]+') then try(to_timestamp({t}::double / 1e6)) end",
        "epoch microseconds",
    ),
    "date": ("try_cast({t} as date)", "a YYYY-MM-DD date"),
    "yyyymmdd": ("try_strptime({t}, '%Y%m%d')", "a YYYYMMDD date"),
    "month": ("try_strptime({t}, '%Y-%m')", "a YYYY-MM month"),
}


def _instant(rule: FieldRule, text: str) -> str | None:
    return _DATED[rule.kind][0].format(t=text) if rule.is_dated else None


def _expected(wording: str, got: str) -> str:
    return f"{_sql_string(f'expected {wording}, got ')} || {got}"


def _number_checks(rule: FieldRule, field: _Field) -> list[tuple[str, str]]:
    """A number or an integer: well formed, fits its staging type, within its bounds."""
    number, text, got = field.number, field.text, field.got
    if rule.kind == "integer":
        fits = rule.fits or "bigint"
        checks = [
            (f"not regexp_full_match({text}, '-?[0-9]+')", _expected("an integer", got)),
            (f"try_cast({text} as {fits}) is null", _expected(f"an integer that fits {fits}", got)),
        ]
    else:
        checks = [
            (f"{number} is null", _expected("a number", got)),
            (f"not isfinite({number})", _expected("a finite number", got)),
        ]
        if rule.fits:
            precision, scale = (int(x) for x in re.findall(r"\d+", rule.fits))
            checks.append(
                (
                    f"abs({number}) >= 1e{precision - scale}",
                    _expected(f"a number that fits {rule.fits}", got),
                )
            )
    if rule.minimum is not None:
        checks.append((f"{number} < {rule.minimum}", _expected(f"at least {rule.minimum:g}", got)))
    if rule.maximum is not None:
        checks.append((f"{number} > {rule.maximum}", _expected(f"at most {rule.maximum:g}", got)))
    if rule.positive:
        checks.append((f"{number} <= 0", _expected("a number above 0", got)))
    return checks


def _dated_checks(rule: FieldRule, field: _Field, window: PlausibleDates) -> list[tuple[str, str]]:
    """Readable in its kind, then within the plausible window around its extract date."""
    text, got = field.text, field.got
    day = f"try_cast({field.instant} as date)"
    ahead = (
        f"interval {window.planned_years} year"
        if rule.planned
        else f"interval {window.days_ahead} day"
    )
    latest = f"cast(extract_date + {ahead} as date)"
    since = window.since.isoformat()
    reason = (
        f"{_sql_string(f'expected a date from {since} to ')} || {latest} || ', got ' || {got} "
        f"|| case when {day}::varchar <> {text} then ' (' || {day} || ')' else '' end "
        # Seconds read as milliseconds fall in 1970; milliseconds read as seconds, centuries on.
        f"|| case when regexp_full_match({text}, '[0-9]+') and ({day} < DATE '1971-01-01' "
        f"or {day} > DATE '2999-12-31') then ': an epoch in another unit?' else '' end"
    )
    return [
        (f"{field.instant} is null", _expected(_DATED[rule.kind][1], got)),
        (f"{day} < DATE '{since}' or {day} > {latest}", reason),
    ]


def _value_checks(rule: FieldRule, field: _Field, window: PlausibleDates) -> list[tuple[str, str]]:
    """(condition, reason) pairs in SQL over a present field: each condition is true when the
    value breaks the rule in that way, and its reason says how, quoting the value."""
    text, got = field.text, field.got
    if rule.kind in ("integer", "number"):
        return _number_checks(rule, field)
    if rule.is_dated:
        return _dated_checks(rule, field, window)
    return {
        "required": [],
        "enum": [
            (
                f"{text} not in ({', '.join(_sql_string(a) for a in rule.allowed)})",
                _expected(f"one of {', '.join(rule.allowed)}", got),
            )
        ],
        "currency": [
            (f"not regexp_full_match({text}, '[A-Za-z]{{3}}')", _expected("a currency code", got))
        ],
        "object": [(f"{field.lead} <> '{{'", _expected("a JSON object", got))],
        "array": [(f"{field.lead} <> '['", _expected("a JSON array", got))],
    }[rule.kind]


def _wildcard_source(rule: FieldRule) -> str:
    """What a `name[*].field` rule reads from each record: the array's elements when the field
    is required in each (a missing one must show), else the field's values alone, as text
    (one parse, no element parsed again: GA4's event parameters are millions)."""
    if rule.required:
        return f"json_extract(raw_text, {_sql_string(f'$.{rule.path.split(chr(91))[0]}[*]')})"
    return f"json_extract_string(raw_text, {_sql_string(f'$.{rule.path}')})"


def _element_checks(rule: FieldRule, window: PlausibleDates):
    """For a `name[*].field` rule: a function from an item of the list its source path reads
    (an element, or the field's value) to the (condition, reason) pairs of the field."""
    array, path = rule.path.split("[*].", 1)

    def checks(item: str) -> list[tuple[str, str]]:
        field = (
            _Field.of(rule, f"json_extract({item}, {_sql_string(f'$.{path}')})")
            if rule.required
            else _Field.of_text(rule, item)
        )
        failures = (
            [(field.missing, _sql_string(f"missing in an element of {array}"))]
            if rule.required
            else []
        )
        return failures + [
            (f"(not {field.missing} and {condition})", reason)
            for condition, reason in _value_checks(rule, field, window)
        ]

    return checks


def _rule_failures(
    rule: FieldRule, field: _Field | str, window: PlausibleDates
) -> list[tuple[str, str]]:
    """(condition, reason) pairs over the record's field (for a `[*]` rule, the name of the
    list of items its source path reads: the first item that fails, fails)."""
    if isinstance(field, str):
        checks = _element_checks(rule, window)
        # One pass over the list tells whether an item fails; which check failed, and on
        # which item, is worked out only for the records that do.
        any_check = " or ".join(f"({condition})" for condition, _ in checks("x"))
        reasons = "".join(
            f" when coalesce(list_bool_or(list_transform({field}, lambda x: {condition})), "
            f"false) then {checks(f'list_filter({field}, lambda x: {condition})[1]')[i][1]}"
            for i, (condition, _) in enumerate(checks("x"))
        )
        return [
            (
                f"coalesce(list_bool_or(list_transform({field}, lambda x: {any_check})), false)",
                f"case{reasons} end",
            )
        ]
    failures = [(field.missing, "'missing'")] if rule.required else []
    failures += [
        (f"(not {field.missing} and {condition})", reason)
        for condition, reason in _value_checks(rule, field, window)
    ]
    return failures


def _order_failure(rule: FieldRule, field: _Field, earlier: _Field) -> tuple[str, str, str]:
    """(field, condition, reason) of a dated field that precedes the field it may not."""
    return (
        rule.path,
        f"{field.instant} < {earlier.instant}",
        f"{_sql_string(f'expected no earlier than {rule.not_before} (')} || {earlier.text} "
        f"|| '), got ' || {field.text}",
    )


def _validate(
    conn: duckdb.DuckDBPyConnection, landing_object: LandingObject, window: PlausibleDates
) -> None:
    """record_failures: the records of landed_records that break a rule, with the field and
    the reason of the first rule broken (only the failures are stored: the valid records are
    not copied)."""
    plain = [r for r in landing_object.rules if "[*]" not in r.path]
    # Each field's text, type, number and instant are columns, worked out once per record
    # (every check of a rule reads them).
    # A text is worked out only for the rules that read it (the object and array rules need
    # it only to quote a failing value: converting a whole array to text costs).
    reads_text = {rule: rule.kind not in ("required", "object", "array") for rule in plain}
    fields: dict[FieldRule, _Field | str] = {
        rule: _Field(
            f"f{i}_text" if reads_text[rule] else f"(v[{i}] ->> '$')",
            f"(v[{i}] is null or v[{i}]::varchar = 'null')",
            f"left(v[{i}]::varchar, 1)",
            f"f{i}_number" if _number(rule, "") else None,
            f"f{i}_instant" if rule.is_dated else None,
        )
        for i, rule in enumerate(plain, 1)
    }
    fields |= {r: f"w{i}" for i, r in enumerate(landing_object.rules) if "[*]" in r.path}
    failures = [
        (rule.path, condition, reason)
        for rule in landing_object.rules
        for condition, reason in _rule_failures(rule, fields[rule], window)
    ]
    # Order between two fields last: both are then readable.
    failures += [
        _order_failure(rule, fields[rule], fields[earlier])
        for rule in plain
        if rule.not_before
        for earlier in plain
        if earlier.path == rule.not_before
    ]
    cases = "".join(
        f" when {condition} then {{'field': {_sql_string(path)}, 'reason': {reason}}}"
        for path, condition, reason in failures
    )
    texts = "".join(
        f", v[{i}] ->> '$' as f{i}_text" for i, rule in enumerate(plain, 1) if reads_text[rule]
    )
    readings = "".join(
        (f", {_number(rule, f'f{i}_text')} as f{i}_number" if _number(rule, "") else "")
        + (f", {_instant(rule, f'f{i}_text')} as f{i}_instant" if rule.is_dated else "")
        for i, rule in enumerate(plain, 1)
    )
    # One JSON parse per record extracts every field the plain rules look at (the lists of
    # the `[*]` rules need a parse each); try() turns a malformed line into null instead of an
    # error, so that parse also tells it apart.
    paths = "[" + ", ".join(_sql_string(f"$.{r.path}") for r in plain) + "]"
    arrays = "".join(
        f", try({_wildcard_source(r)}) as {name}"
        for r, name in fields.items()
        if isinstance(name, str)
    )
    conn.execute(
        "create or replace temp table record_failures as "
        "select file_sha256, record_number, failure.field as failure_field, "
        "failure.reason as failure_reason from ("
        "select file_sha256, record_number, case when read_error is not null then "
        "{'field': null, 'reason': read_error} when not is_object then {'field': null, "
        "'reason': case when trim(raw_text, ' ' || chr(9) || chr(13)) = '' then 'a blank line' "
        "when json_valid(raw_text) then 'record is not a JSON object' "
        f"else 'malformed JSON' end}}{cases} end as failure "
        f"from (select *{readings} from (select *{texts}, "
        "coalesce(v is not null and ltrim(raw_text) like '{%', false) as is_object "
        f"from (select *, try(json_extract(raw_text, {paths})) as v{arrays} "
        "from landed_records)))) where failure is not null"
    )


def _flag_version_conflicts(
    conn: duckdb.DuckDBPyConnection, landing_object: LandingObject, replaced_paths: list[str]
) -> None:
    """Adds to record_failures every valid record whose id and update time an earlier version
    already has (in raw, or earlier in these files) with other content: the first version
    delivered stays, and the conflict is flagged instead of a silent pick. The rows of
    deliveries being replaced do not count."""
    id_path, updated_path = (_sql_string(f"$.{path}") for path in landing_object.version)
    conn.execute(
        "insert into record_failures "
        "with incoming as (select records.source_file, records.file_sha256, "
        f"records.record_number, records.raw_text ->> {id_path} as id, "
        f"records.raw_text ->> {updated_path} as updated, json(records.raw_text) as body "
        "from landed_records as records anti join record_failures as failures "
        "on records.file_sha256 = failures.file_sha256 "
        "and records.record_number = failures.record_number), "
        "versions as (select 0 as delivered, source_file, record_number, id, updated, body "
        "from incoming union all "
        f"select -1, stored._source_file, stored._record_number, stored.record ->> {id_path}, "
        f"stored.record ->> {updated_path}, json(stored.record) "
        f"from {landing_object.raw_table} as stored "
        f"where not list_contains(?, stored._source_file) "
        f"and (stored.record ->> {id_path}) in (select incoming.id from incoming)), "
        "ordered as (select *, first_value(source_file || ' record ' || record_number) over "
        "(partition by id, updated order by delivered, source_file, record_number) as first, "
        "first_value(body) over (partition by id, updated "
        "order by delivered, source_file, record_number) as first_body from versions "
        "where id is not null and updated is not null) "
        f"select incoming.file_sha256, incoming.record_number, "
        f"{_sql_string(landing_object.version[1])}, "
        "'same id and update time as ' || ordered.first || ', with other content' "
        "from incoming join ordered on incoming.source_file = ordered.source_file "
        "and incoming.record_number = ordered.record_number and ordered.delivered = 0 "
        "where ordered.body <> ordered.first_body",
        [replaced_paths],
    )


# --- one object -------------------------------------------------------------------------------


def _load_object_files(
    conn: duckdb.DuckDBPyConnection,
    files: list[LandedFile],
    landing_dir: Path,
    window: PlausibleDates,
) -> list[FileLoad]:
    landing_object = files[0].landing_object
    loads: dict[str, FileLoad] = {}  # by path
    to_read: list[tuple[LandedFile, str, str]] = []
    # Taken before the checksum: a file written again while it is read looks changed later.
    stats = [landed.path.stat() for landed in files]
    # hashlib releases the GIL on large blocks: checksums of several files run in parallel.
    with ThreadPoolExecutor() as pool:
        checksums = list(pool.map(file_sha256, (landed.path for landed in files)))
    checked = []
    earlier = _current_deliveries(conn, landing_object)
    loaded_here: dict[str, str] = {}  # checksum -> path, of the contents this call loads
    for landed, sha256, stat in zip(files, checksums, stats, strict=True):
        relative = landed.path.relative_to(landing_dir).as_posix()
        checked.append((relative, stat.st_size, stat.st_mtime_ns, sha256))
        base = FileLoad(landed, relative, sha256, status="already_loaded")
        earlier_sha256, earlier_status = earlier.get(relative, (None, None))
        if earlier_sha256 == sha256 and earlier_status != "failed":
            loads[relative] = base
            continue
        # A file that failed is read again (the failure may have been the machine's).
        if earlier_sha256 != sha256:
            base = replace(base, replaces=earlier_sha256)
        # Empty files all have one checksum, and no content to share.
        same_content = stat.st_size and (loaded_here.get(sha256) or _loaded_path(conn, sha256))
        if same_content:
            loads[relative] = replace(
                base, status="duplicate", failure_reason=f"same content as {same_content}"
            )
        # An empty JSON-lines file is a delivery of nothing; any other empty file is broken
        # (a CSV has at least its header, a gzip stream its own header).
        elif stat.st_size == 0 and landed.path.name.lower().endswith((".jsonl", ".ndjson")):
            loads[relative] = replace(base, status="loaded")
            loaded_here[sha256] = relative
        elif stat.st_size == 0:
            loads[relative] = replace(base, status="failed", failure_reason="the file is empty")
        else:
            loads[relative] = replace(base, status="loaded")
            loaded_here[sha256] = relative
            to_read.append((landed, relative, sha256))

    # Reading happens before the transaction: in DuckDB a failed statement (an unreadable
    # file) aborts the whole transaction, and temp tables are private to this connection.
    conn.execute(
        "create or replace temp table landed_records (source_file VARCHAR, "
        "file_sha256 VARCHAR, extract_date DATE, record_number BIGINT, raw_text VARCHAR, "
        "read_error VARCHAR)"
    )
    unreadable = _read_into_landed_records(conn, to_read)
    _validate(conn, landing_object, window)
    if landing_object.version:
        replaced = [load.relative_path for load in loads.values() if load.replaces]
        _flag_version_conflicts(conn, landing_object, replaced)

    conn.execute("begin transaction")
    try:
        counts = dict(
            conn.execute(
                "select file_sha256, count(*) from landed_records group by file_sha256"
            ).fetchall()
        )
        failures, not_objects, blanks = {}, {}, {}
        for sha256, failed, not_object, blank in conn.execute(
            "select file_sha256, count(*), count(*) filter (where failure_field is null), "
            "count(*) filter (where failure_reason = 'a blank line') "
            "from record_failures group by file_sha256"
        ).fetchall():
            failures[sha256], not_objects[sha256], blanks[sha256] = failed, not_object, blank
        for landed, relative, sha256 in to_read:
            read = counts.get(sha256, 0)
            # Not a file of JSON lines: not one line is a JSON object, and one is text.
            not_json_lines = not_objects.get(sha256, 0) == read > blanks.get(sha256, 0)
            if sha256 in unreadable:
                reason = unreadable[sha256]
            elif landed.file_format == "jsonl" and not_json_lines:
                reason = f"not JSON lines: none of its {read} lines is a JSON object"
            else:
                quarantined = failures.get(sha256, 0)
                loads[relative] = replace(
                    loads[relative],
                    rows_read=read,
                    rows_quarantined=quarantined,
                    rows_loaded=read - quarantined,
                )
                continue
            loads[relative] = replace(loads[relative], status="failed", failure_reason=reason)
        loaded = [load.sha256 for load in loads.values() if load.status == "loaded"]
        for load in loads.values():
            if load.replaces and load.status != "already_loaded":
                _retire_delivery(conn, landing_object, load)

        conn.execute(
            f"insert into {landing_object.raw_table} select records.raw_text::json, "
            "records.extract_date, records.source_file, records.record_number, "
            "records.file_sha256 from landed_records as records "
            "anti join record_failures as failures on records.file_sha256 = failures.file_sha256 "
            "and records.record_number = failures.record_number "
            "where list_contains(?, records.file_sha256)",
            [loaded],
        )
        conn.execute(
            "insert into ingestion.quarantine select records.file_sha256, records.source_file, "
            "?, ?, records.extract_date, records.record_number, failures.failure_field, "
            f"failures.failure_reason, {masked_raw_text(landing_object, 'records.raw_text')} "
            "from landed_records as records "
            "join record_failures as failures on records.file_sha256 = failures.file_sha256 "
            "and records.record_number = failures.record_number "
            "where list_contains(?, records.file_sha256)",
            [landing_object.source, landing_object.name, loaded],
        )
        for load in loads.values():
            if load.status != "already_loaded":
                _record_in_manifest(conn, load)
        conn.executemany(
            "insert or replace into ingestion.landing_reads "
            "(file_path, size_bytes, modified_ns, file_sha256) values (?, ?, ?, ?)",
            checked,
        )
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return list(loads.values())


def latest_extract_date(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The latest extract date loaded (ISO), the day the KPIs are as of, or None before any
    load. A backfill of an old day must not cut off the later periods, so the pipeline uses
    this rather than the run's partitions."""
    try:
        loaded = conn.execute(
            "select max(extract_date) from ingestion.load_manifest where status = 'loaded'"
        ).fetchone()[0]
    except duckdb.CatalogException:
        return None
    return loaded.isoformat() if loaded else None


def extract_dates_to_read(conn: duckdb.DuckDBPyConnection, landing_dir: Path) -> list[date] | None:
    """The extract dates with a landed file of the contract that the loader has not read as it
    is now (new, or changed since: another size or modification time), or None when the
    warehouse does not record what it read. Reading the other dates again would change
    nothing: their files are loaded (or failed, and are read again once they change)."""
    recorded = conn.execute(
        "select count(*) from duckdb_tables() "
        "where schema_name = 'ingestion' and table_name = 'landing_reads'"
    ).fetchone()[0]
    if not recorded:
        return None
    read = {
        path: (size, modified)
        for path, size, modified in conn.execute(
            "select file_path, size_bytes, modified_ns from ingestion.landing_reads"
        ).fetchall()
    }
    to_read = set()
    days = extract_dates(landing_dir)
    for source in SOURCES:
        for extract_date in days:
            for landed in landed_files(landing_dir, source, extract_date)[0]:
                stat = landed.path.stat()
                relative = landed.path.relative_to(landing_dir).as_posix()
                if read.get(relative) != (stat.st_size, stat.st_mtime_ns):
                    to_read.add(extract_date)
    return sorted(to_read)


def _current_deliveries(
    conn: duckdb.DuckDBPyConnection, landing_object: LandingObject
) -> dict[str, tuple[str, str]]:
    """{path: (checksum, status)} of the current delivery of each file of the object."""
    return {
        path: (sha256, status)
        for path, sha256, status in conn.execute(
            "select file_path, file_sha256, status from ingestion.load_manifest where source = ? "
            "and object = ? and status in ('loaded', 'failed', 'duplicate')",
            [landing_object.source, landing_object.name],
        ).fetchall()
    }


def _loaded_path(conn: duckdb.DuckDBPyConnection, sha256: str) -> str | None:
    """The path whose delivery loaded this content, if any."""
    found = conn.execute(
        "select file_path from ingestion.load_manifest where file_sha256 = ? and status = 'loaded'",
        [sha256],
    ).fetchone()
    return found[0] if found else None


def _retire_delivery(
    conn: duckdb.DuckDBPyConnection, landing_object: LandingObject, load: FileLoad
) -> None:
    """The earlier delivery of a path delivered again with other content: its rows leave raw
    and quarantine, unless another path holds the same content, which then owns them."""
    old = load.replaces
    heir = conn.execute(
        "select file_path from ingestion.load_manifest where file_sha256 = ? "
        "and status = 'duplicate' and file_path <> ? order by file_path limit 1",
        [old, load.relative_path],
    ).fetchone()
    was_loaded = _loaded_path(conn, old) == load.relative_path
    if was_loaded and heir:
        for table, path_column in (
            (landing_object.raw_table, "_source_file"),
            ("ingestion.quarantine", "file_path"),
        ):
            sha_column = "_file_sha256" if path_column == "_source_file" else "file_sha256"
            conn.execute(
                f"update {table} set {path_column} = ? where {sha_column} = ? "
                f"and {path_column} = ?",
                [heir[0], old, load.relative_path],
            )
        conn.execute(
            "update ingestion.load_manifest as heir set status = 'loaded', "
            "failure_reason = null, rows_read = retired.rows_read, "
            "rows_loaded = retired.rows_loaded, rows_quarantined = retired.rows_quarantined "
            "from ingestion.load_manifest as retired where heir.file_path = ? "
            "and heir.file_sha256 = ? and retired.file_path = ? and retired.file_sha256 = ?",
            [heir[0], old, load.relative_path, old],
        )
    elif was_loaded:
        conn.execute(
            f"delete from {landing_object.raw_table} where _file_sha256 = ? and _source_file = ?",
            [old, load.relative_path],
        )
        conn.execute(
            "delete from ingestion.quarantine where file_sha256 = ? and file_path = ?",
            [old, load.relative_path],
        )
    conn.execute(
        "update ingestion.load_manifest set status = 'replaced', failure_reason = ? "
        "where file_path = ? and file_sha256 = ?",
        [
            f"delivered again with other content (sha256 {load.sha256[:12]})",
            load.relative_path,
            old,
        ],
    )


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def _record_in_manifest(conn: duckdb.DuckDBPyConnection, load: FileLoad) -> None:
    conn.execute(
        "delete from ingestion.load_manifest where file_path = ? and file_sha256 = ?",
        [load.relative_path, load.sha256],
    )
    conn.execute(
        "insert into ingestion.load_manifest (file_sha256, source, object, extract_date, "
        "file_path, file_format, status, rows_read, rows_loaded, rows_quarantined, "
        "failure_reason) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load.sha256,
            load.file.landing_object.source,
            load.file.landing_object.name,
            load.file.extract_date,
            load.relative_path,
            load.file.file_format,
            load.status,
            load.rows_read,
            load.rows_loaded,
            load.rows_quarantined,
            load.failure_reason,
        ],
    )


def record_ignored(
    conn: duckdb.DuckDBPyConnection, ignored: list[IgnoredEntry], sources: list[str]
) -> None:
    """The entries of these sources' folders and of the top of the landing folder that are not
    loaded, in the manifest with their reason; they replace the ones recorded before (an entry
    fixed since is no longer ignored)."""
    ensure_ingestion_tables(conn)
    conn.execute(
        "delete from ingestion.load_manifest where status = 'ignored' "
        "and (source is null or list_contains(?, source))",
        [sources],
    )
    rows = [
        (entry.relative_path, entry.source, entry.extract_date, entry.reason)
        for entry in ignored
        if entry.source is None or entry.source in sources
    ]
    if rows:  # executemany refuses an empty list
        conn.executemany(
            "insert into ingestion.load_manifest (file_path, source, extract_date, status, "
            "failure_reason) values (?, ?, ?, 'ignored', ?)",
            rows,
        )


def ingestion_report(
    conn: duckdb.DuckDBPyConnection, since: datetime, limit: int = 20
) -> list[str]:
    """What ingestion set aside, in lines for a person: the files read since `since` that
    failed, were duplicates or replaced an earlier delivery, their quarantined records (with
    the first reason), and every entry of the landing folder that is ignored."""
    rows = conn.execute(
        "select manifest.status, manifest.file_path, manifest.failure_reason, "
        "manifest.rows_quarantined, manifest.rows_read, first_reason.reason "
        "from ingestion.load_manifest as manifest left join ("
        "select file_sha256, file_path, min_by(coalesce(field || ': ', '') || reason, "
        "record_number) as reason from ingestion.quarantine group by all) as first_reason "
        "on manifest.file_sha256 = first_reason.file_sha256 "
        "and manifest.file_path = first_reason.file_path "
        "where (manifest.status = 'ignored' or manifest.loaded_at >= ?) "
        "and (manifest.status <> 'loaded' or manifest.rows_quarantined > 0) "
        "order by manifest.status, manifest.file_path",
        [since],
    ).fetchall()
    lines = [
        f"{path}: {quarantined} of {read} records quarantined (first: {first})"
        if status == "loaded"
        else f"{path}: {status}, {reason}"
        for status, path, reason, quarantined, read, first in rows
    ]
    if len(lines) > limit:
        lines[limit:] = [f"... and {len(lines) - limit} more"]
    return lines

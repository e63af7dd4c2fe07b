"""Set-based loading of landed files into the DuckDB build warehouse.

Every file is read by DuckDB's own readers (no Python loop over records), once per content
checksum. Each record lands in its raw table with its lineage (file, record number), or in
the quarantine table with a reason; the load manifest records rows read, loaded and
quarantined per file, and files that could not be read at all.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from boussole.ingestion.contracts import LANDING_OBJECTS, LandedFile

RAW_COLUMNS = """
    record JSON NOT NULL,
    _extract_date DATE NOT NULL,
    _source_file VARCHAR NOT NULL,
    _record_number BIGINT NOT NULL,
    _file_sha256 VARCHAR NOT NULL
"""

INGESTION_DDL = """
create schema if not exists ingestion;
create table if not exists ingestion.load_manifest (
    file_sha256 VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    object VARCHAR NOT NULL,
    extract_date DATE NOT NULL,
    file_path VARCHAR NOT NULL,
    file_format VARCHAR NOT NULL,
    status VARCHAR NOT NULL,          -- loaded | failed
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    failure_reason VARCHAR,
    loaded_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT current_timestamp
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


@dataclass(frozen=True)
class FileLoad:
    """What happened to one landed file."""

    file: LandedFile
    relative_path: str
    sha256: str
    status: str  # loaded | failed | already_loaded
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    failure_reason: str | None = None


def ensure_ingestion_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the manifest, quarantine and every raw table, so models never miss a source."""
    conn.execute(INGESTION_DDL)
    for landing_object in LANDING_OBJECTS:
        conn.execute(f"create schema if not exists {landing_object.raw_schema}")
        conn.execute(f"create table if not exists {landing_object.raw_table} ({RAW_COLUMNS})")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def _records_query(landed: LandedFile) -> str:
    """A query giving (record_number, raw_text) for every record of the file."""
    path = _sql_string(str(landed.path))
    fmt = landed.file_format
    if fmt == "jsonl":
        # Each line as text, so that one malformed line is quarantined, not the whole file.
        return (
            "select ordinality as record_number, line as raw_text "
            f"from read_csv({path}, columns = {{'line': 'VARCHAR'}}, header = false, "
            "delim = chr(1), quote = '', escape = '', auto_detect = false, "
            "compression = 'auto') with ordinality where line is not null"
        )
    if fmt == "json_document":
        key = landed.landing_object.records_key
        records_path = f"$.{key}[*]" if key else "$[*]"
        return (
            "with doc as (select content::json as body from read_text("
            f"{path})) select ordinality as record_number, record::varchar as raw_text "
            f"from doc, unnest(json_extract(body, '{records_path}')) with ordinality "
            "as r(record)"
        )
    if fmt == "csv":
        encoding = "utf-8" if _is_utf8(landed.path) else "latin-1"
        reader = f"read_csv({path}, all_varchar = true, header = true, encoding = '{encoding}')"
    else:
        reader = f"read_parquet({path})"
    return (
        f"with src as (select * from {reader} with ordinality) "
        "select src.ordinality as record_number, to_json(rec)::varchar as raw_text "
        "from src, lateral (select src.* exclude (ordinality)) as rec"
    )


def load_file(conn: duckdb.DuckDBPyConnection, landed: LandedFile, landing_dir: Path) -> FileLoad:
    """Load one file atomically (records, quarantine and manifest in one transaction)."""
    relative_path = landed.path.relative_to(landing_dir).as_posix()
    sha256 = file_sha256(landed.path)
    obj = landed.landing_object
    base = {"file": landed, "relative_path": relative_path, "sha256": sha256}

    already = conn.execute(
        "select 1 from ingestion.load_manifest where file_sha256 = ? and status = 'loaded'",
        [sha256],
    ).fetchone()
    if already:
        return FileLoad(**base, status="already_loaded")

    lineage = [landed.extract_date, relative_path, sha256]
    conn.execute("begin transaction")
    try:
        if landed.path.stat().st_size == 0:
            raise _Unreadable("the file is empty")
        try:
            # Valid JSON text that starts with "{" is an object: no cast needed to tell.
            conn.execute(
                "create or replace temp table landed_records as select record_number, "
                "raw_text, coalesce(json_valid(raw_text) and ltrim(raw_text) like '{%', false) "
                f"as is_object from ({_records_query(landed)})"
            )
        except duckdb.Error as error:
            raise _Unreadable(_first_line(error)) from error
        rows_read, rows_valid = conn.execute(
            "select count(*), count(*) filter (where is_object) from landed_records"
        ).fetchone()
        if rows_read == 0:
            raise _Unreadable("the file holds no records")
        conn.execute(
            f"insert into {obj.raw_table} select raw_text::json, ?, ?, record_number, ? "
            "from landed_records where is_object",
            lineage,
        )
        conn.execute(
            "insert into ingestion.quarantine select ?, ?, ?, ?, ?, record_number, null, "
            "case when json_valid(raw_text) then 'record is not a JSON object' "
            "else 'malformed JSON' end, raw_text from landed_records where not is_object",
            [sha256, relative_path, obj.source, obj.name, landed.extract_date],
        )
        result = FileLoad(
            **base,
            status="loaded",
            rows_read=rows_read,
            rows_loaded=rows_valid,
            rows_quarantined=rows_read - rows_valid,
        )
    except _Unreadable as unreadable:
        conn.execute("rollback")
        conn.execute("begin transaction")
        result = FileLoad(**base, status="failed", failure_reason=str(unreadable))
    _record_in_manifest(conn, result)
    conn.execute("commit")
    return result


def load_files(
    conn: duckdb.DuckDBPyConnection, files: Iterable[LandedFile], landing_dir: Path
) -> list[FileLoad]:
    ensure_ingestion_tables(conn)
    return [load_file(conn, landed, landing_dir) for landed in files]


class _Unreadable(Exception):
    """The file as a whole cannot be read (truncated, wrong format, empty)."""


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def _record_in_manifest(conn: duckdb.DuckDBPyConnection, load: FileLoad) -> None:
    # A failed file may be fixed and delivered again under the same content: keep one row.
    conn.execute("delete from ingestion.load_manifest where file_sha256 = ?", [load.sha256])
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

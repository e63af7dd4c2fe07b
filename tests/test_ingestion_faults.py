"""Every kind of bad input the generator can inject ends in quarantine or as a failed file,
with its reason, and the counts reconcile: nothing is lost silently."""

import csv
import gzip
import io
import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet
import pytest

from boussole.ingestion.contracts import LANDING_OBJECTS, SOURCES, extract_dates, landed_files
from boussole.ingestion.loader import load_files
from boussole.sample_data import FAULTS, SampleScale, generate


def load_landing_folder(conn, landing):
    loads = []
    for source in SOURCES:
        for day in extract_dates(landing):
            files, _ = landed_files(landing, source, day)
            loads.extend(load_files(conn, files, landing))
    return loads


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    """Two days of sample extracts with every fault; only read by the tests."""
    landing = tmp_path_factory.mktemp("faults") / "landing"
    generate(
        landing,
        seed=3,
        start=date(2026, 1, 1),
        end=date(2026, 1, 2),
        scale=SampleScale(web_events_per_day=300),
        faults=FAULTS,
    )
    return landing


@pytest.fixture(scope="module")
def loaded(landing):
    """The landing folder loaded once, shared read-only (a test that loads again uses its own
    warehouse, so that no test depends on another having run before it)."""
    conn = duckdb.connect()
    loads = load_landing_folder(conn, landing)
    yield conn, {load.relative_path: load for load in loads}
    conn.close()


def quarantined(conn, path, field):
    return conn.execute(
        "select reason, raw_text from ingestion.quarantine where file_path = ? "
        "and field is not distinct from ?",
        [path, field],
    ).fetchall()


@pytest.mark.parametrize(
    ("path", "field", "reason_start", "raw_fragment"),
    [
        ("crm/2026-01-01/deals.jsonl", None, "malformed JSON", '"id"'),
        ("crm/2026-01-01/deals.jsonl", "properties.amount", "expected a number, got abc", "abc"),
        ("crm/2026-01-01/contacts.jsonl", "id", "missing", "properties"),
        ("support/2026-01-01/tickets.jsonl", "created_at", "expected an ISO-8601", "not-a-date"),
        ("support/2026-01-01/tickets.jsonl", "status", "expected one of new, open", "escalated"),
        (
            "web/2026-01-01/events.jsonl.gz",
            "event_timestamp",
            "expected epoch microseconds, got abc",
            "abc",
        ),
    ],
)
def test_bad_records_are_quarantined_with_field_and_reason(
    loaded, path, field, reason_start, raw_fragment
):
    conn, _ = loaded
    rows = quarantined(conn, path, field)
    assert len(rows) == 1, rows
    reason, raw_text = rows[0]
    assert reason.startswith(reason_start)
    assert raw_fragment in raw_text


@pytest.mark.parametrize(
    ("path", "reason_fragment"),
    [
        ("support/2026-01-01/tickets_extra.jsonl.gz", "gzip"),
        ("crm/2026-01-01/calls.jsonl", "not json lines"),
        ("support/2026-01-01/groups.jsonl.gz", "the file is empty"),
    ],
)
def test_unreadable_files_fail_with_a_reason(loaded, path, reason_fragment):
    _, loads = loaded
    assert loads[path].status == "failed"
    assert reason_fragment in loads[path].failure_reason.lower()


def test_other_formats_load(loaded):
    conn, loads = loaded
    # Latin-1 CSV keeps its accents; the BOM does not leak into the first column name.
    campaigns = {
        row[0]
        for row in conn.execute(
            "select record ->> '$.campaign' from raw_spend.marketing_spend"
        ).fetchall()
    }
    assert any("Été" in (c or "") for c in campaigns)
    assert conn.execute(
        "select count(*) from raw_spend.fx_rates where record ->> '$.date' is null"
    ).fetchone() == (0,)
    assert loads["web/2026-01-01/events.parquet"].rows_loaded > 0
    # Unknown fields stay in the raw record (every fifth contact of the first day has two).
    first_day_contacts = conn.execute(
        "select count(*) from raw_crm.contacts where _extract_date = '2026-01-01'"
    ).fetchone()[0]
    with_unknown = conn.execute(
        "select count(*) from raw_crm.contacts "
        "where record ->> '$.properties.boussole_lead_score' is not null"
    ).fetchone()[0]
    assert with_unknown == pytest.approx(first_day_contacts / 5, abs=1)


def records_in_file(path: Path) -> int:
    """The records of a landed file, counted here without the loader: lines of JSON lines
    (plain or gzip), rows of a CSV below its header, records of a JSON document, rows of a
    Parquet file. Raises when the file cannot be read."""
    name = path.name
    if name.endswith(".parquet"):
        return pyarrow.parquet.ParquetFile(path).metadata.num_rows
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    if name.endswith(".csv"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        return len(list(csv.reader(io.StringIO(text)))) - 1
    if name.endswith(".json"):
        return len(json.loads(data)["results"])  # HubSpot pipelines: {"results": [...]}
    return len(data.decode("utf-8").splitlines())


def test_counts_reconcile_per_file(loaded, landing):
    conn, loads = loaded
    manifest = {
        row[0]: row[1:]
        for row in conn.execute(
            "select file_path, status, rows_read, rows_loaded, rows_quarantined "
            "from ingestion.load_manifest"
        ).fetchall()
    }
    assert manifest.keys() == loads.keys()
    formats = set()
    for path, load in loads.items():
        raw_table = load.file.landing_object.raw_table
        in_raw = [
            n
            for (n,) in conn.execute(
                f"select _record_number from {raw_table} where _file_sha256 = ?", [load.sha256]
            ).fetchall()
        ]
        in_quarantine = [
            n
            for (n,) in conn.execute(
                "select record_number from ingestion.quarantine where file_sha256 = ?",
                [load.sha256],
            ).fetchall()
        ]
        assert manifest[path] == (
            load.status,
            load.rows_read,
            load.rows_loaded,
            load.rows_quarantined,
        ), path
        if load.status == "failed":
            assert (load.rows_read, in_raw, in_quarantine) == (0, [], []), path
            continue
        formats.add(load.file.file_format)
        records = records_in_file(landing / path)
        assert load.rows_read == records, path
        assert (load.rows_loaded, load.rows_quarantined) == (len(in_raw), len(in_quarantine)), path
        # Each record of the file is in raw or in quarantine, never in both, none left out.
        assert sorted(in_raw + in_quarantine) == list(range(1, records + 1)), path
    assert formats == {"jsonl", "json_document", "csv", "parquet"}
    assert any(path.endswith(".jsonl.gz") for path, load in loads.items() if load.rows_read)
    # The raw tables hold the rows of these files and nothing else.
    raw_total = sum(
        conn.execute(f"select count(*) from {landing_object.raw_table}").fetchone()[0]
        for landing_object in LANDING_OBJECTS
    )
    assert raw_total == sum(load.rows_loaded for load in loads.values()) > 0


def warehouse_state(conn) -> dict:
    """Row counts of every raw table and of the quarantine, and the load manifest without
    its load times."""
    return {
        "raw": {
            landing_object.raw_table: conn.execute(
                f"select count(*) from {landing_object.raw_table}"
            ).fetchone()[0]
            for landing_object in LANDING_OBJECTS
        },
        "quarantine": conn.execute("select count(*) from ingestion.quarantine").fetchone()[0],
        "manifest": conn.execute(
            "select * exclude (loaded_at) from ingestion.load_manifest order by file_sha256"
        ).fetchall(),
    }


def test_reingesting_the_same_files_changes_nothing(landing):
    with duckdb.connect() as conn:
        first = load_landing_folder(conn, landing)
        before = warehouse_state(conn)
        again = load_landing_folder(conn, landing)
        after = warehouse_state(conn)
    assert sum(before["raw"].values()) > 0 and before["quarantine"] > 0
    assert after == before
    # Files loaded once are skipped; files that could not be read are tried again.
    statuses = {load.relative_path: load.status for load in first}
    assert {load.relative_path: load.status for load in again} == {
        path: "failed" if status == "failed" else "already_loaded"
        for path, status in statuses.items()
    }

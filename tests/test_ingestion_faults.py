"""Every kind of bad input the generator can inject ends in quarantine or as a failed file,
with its reason, and the counts reconcile: nothing is lost silently."""

from datetime import date

import duckdb
import pytest

from boussole.ingestion.contracts import SOURCES, extract_dates, landed_files
from boussole.ingestion.loader import load_files
from boussole.sample_data import FAULTS, SampleScale, generate


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    landing = tmp_path_factory.mktemp("faults") / "landing"
    generate(
        landing,
        seed=3,
        start=date(2026, 1, 1),
        end=date(2026, 1, 2),
        scale=SampleScale(web_events_per_day=300),
        faults=FAULTS,
    )
    conn = duckdb.connect()
    loads = []
    for source in SOURCES:
        for day in extract_dates(landing):
            files, _ = landed_files(landing, source, day)
            loads.extend(load_files(conn, files, landing))
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
            "expected an integer, got abc",
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
        ("support/2026-01-01/groups.jsonl", "the file is empty"),
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


def test_counts_reconcile_per_file(loaded):
    conn, loads = loaded
    for load in loads.values():
        assert load.rows_read == load.rows_loaded + load.rows_quarantined, load
    per_file = conn.execute(
        """
        select m.file_path, m.rows_loaded, m.rows_quarantined,
            (select count(*) from ingestion.quarantine q where q.file_sha256 = m.file_sha256)
        from ingestion.load_manifest m
        """
    ).fetchall()
    for path, _, rows_quarantined, in_quarantine in per_file:
        assert rows_quarantined == in_quarantine, path
    raw_total = sum(
        conn.execute(f"select count(*) from raw_{s}.{o}").fetchone()[0]
        for s, o in conn.execute(
            "select distinct source, object from ingestion.load_manifest"
        ).fetchall()
    )
    assert raw_total == sum(load.rows_loaded for load in loads.values())


def test_reingesting_the_same_files_changes_nothing(loaded, tmp_path):
    conn, loads = loaded
    before = conn.execute("select count(*) from ingestion.quarantine").fetchone()
    landing = next(iter(loads.values())).file.path.parents[2]
    again = []
    for source in SOURCES:
        for day in extract_dates(landing):
            files, _ = landed_files(landing, source, day)
            again.extend(load_files(conn, files, landing))
    assert {load.status for load in again if load.relative_path in loads} <= {
        "already_loaded",
        "failed",
    }
    assert conn.execute("select count(*) from ingestion.quarantine").fetchone() == before

"""Ingestion is the one gate: each kind of bad input, in hand-made files, ends in the manifest
or the quarantine with its file, record, field and reason, and nothing else is lost."""

import gzip
import json
from datetime import date

import duckdb
import pytest

from boussole.ingestion.contracts import (
    DEFAULT_PLAUSIBLE_DATES,
    SOURCES,
    PlausibleDates,
    landed_files,
    survey_landing,
)
from boussole.ingestion.loader import load_files, record_ignored
from boussole.settings import Settings, SettingsError

DAY = "2026-01-05"


@pytest.fixture
def conn():
    connection = duckdb.connect()
    yield connection
    connection.close()


def land(landing, relative: str, content: bytes | str) -> None:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def json_lines(*records) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def load(conn, landing, source, day=DAY, window=DEFAULT_PLAUSIBLE_DATES):
    files, _ = landed_files(landing, source, date.fromisoformat(day))
    return {x.relative_path: x for x in load_files(conn, files, landing, window)}


def quarantine(conn) -> list[tuple]:
    return conn.execute(
        "select file_path, record_number, field, reason from ingestion.quarantine order by all"
    ).fetchall()


def manifest(conn) -> list[tuple]:
    return conn.execute(
        "select file_path, status, rows_read, rows_loaded, rows_quarantined, failure_reason "
        "from ingestion.load_manifest order by file_path, loaded_at"
    ).fetchall()


def deal(deal_id, **properties):
    return {
        "id": deal_id,
        "properties": {
            "amount": "10",
            "dealstage": "appointmentscheduled",
            "createdate": "2026-01-02T09:00:00Z",
            **properties,
        },
        "updatedAt": "2026-01-04T09:00:00Z",
    }


def test_values_that_would_break_staging_or_mislead_are_quarantined(conn, tmp_path):
    land(
        tmp_path,
        f"crm/{DAY}/deals.jsonl",
        json_lines(
            deal("1"),
            deal("2", amount="1e30"),  # too large for decimal(18, 2)
            deal("3", amount="NaN"),
            deal("4", amount="-5"),
            deal("5", createdate="1767225600"),  # epoch seconds where HubSpot sends ms
            deal("6", createdate="infinity"),
            deal("7", createdate="epoch"),
            deal("8", closedate="2027-06-30T00:00:00Z"),  # an expected close: planned
            deal("9", deal_currency_code="euros"),
            deal("10", closedate="2026-01-01T00:00:00Z"),  # closed before it was created
        ),
    )
    land(
        tmp_path,
        f"support/{DAY}/tickets.jsonl",
        json_lines(
            {"id": 6, "status": "open", "created_at": "2026-01-05T09:00:00Z"},
            {"id": 6.4, "status": "open", "created_at": "2026-01-05T09:00:00Z"},
            {"id": 7, "status": "open", "created_at": "2026-01-05T09:00:00Z", "group_id": "7x"},
        ),
    )
    land(
        tmp_path,
        f"support/{DAY}/ticket_metrics.jsonl",
        json_lines(
            {"id": 1, "ticket_id": 6, "reply_time_in_minutes": {"calendar": -3}},
            {"id": 2, "ticket_id": 6, "replies": 1.5},
        ),
    )
    land(
        tmp_path,
        f"spend/{DAY}/fx_rates.csv",
        "date,currency,rate_to_reporting\n2026-01-05,USD,0.9\n2026-01-05,GBP,0\n"
        "2026-01-05,CHF,Infinity\n",
    )
    land(
        tmp_path,
        f"web/{DAY}/events.jsonl",
        json_lines(
            # Milliseconds where GA4 sends microseconds: a session in 1970 otherwise.
            {"event_timestamp": 1767600000000, "event_name": "page_view", "user_pseudo_id": "u"},
            {"event_timestamp": 1767600000000000, "event_name": "page_view", "user_pseudo_id": "u"},
            {
                "event_timestamp": 1767600000000000,
                "event_name": "user_engagement",
                "user_pseudo_id": "u",
                "event_params": [
                    {"key": "ga_session_id", "value": {"int_value": 7}},
                    {"key": "engagement_time_msec", "value": {"int_value": -40}},
                ],
            },
        ),
    )
    for source in SOURCES:
        load(conn, tmp_path, source)

    window_end = "2026-01-07"
    assert quarantine(conn) == [
        (
            f"crm/{DAY}/deals.jsonl",
            2,
            "properties.amount",
            "expected a number that fits decimal(18, 2), got 1e30",
        ),
        (f"crm/{DAY}/deals.jsonl", 3, "properties.amount", "expected a finite number, got NaN"),
        (f"crm/{DAY}/deals.jsonl", 4, "properties.amount", "expected at least 0, got -5"),
        (
            f"crm/{DAY}/deals.jsonl",
            5,
            "properties.createdate",
            "expected a date from "
            f"2000-01-01 to {window_end}, got 1767225600 (1970-01-21): an epoch in another unit?",
        ),
        (
            f"crm/{DAY}/deals.jsonl",
            6,
            "properties.createdate",
            f"expected a date from 2000-01-01 to {window_end}, got infinity",
        ),
        (
            f"crm/{DAY}/deals.jsonl",
            7,
            "properties.createdate",
            f"expected a date from 2000-01-01 to {window_end}, got epoch (1970-01-01)",
        ),
        (
            f"crm/{DAY}/deals.jsonl",
            9,
            "properties.deal_currency_code",
            "expected a currency code, got euros",
        ),
        (
            f"crm/{DAY}/deals.jsonl",
            10,
            "properties.closedate",
            "expected no earlier than properties.createdate (2026-01-02T09:00:00Z), "
            "got 2026-01-01T00:00:00Z",
        ),
        (f"spend/{DAY}/fx_rates.csv", 2, "rate_to_reporting", "expected a number above 0, got 0"),
        (
            f"spend/{DAY}/fx_rates.csv",
            3,
            "rate_to_reporting",
            "expected a finite number, got Infinity",
        ),
        (
            f"support/{DAY}/ticket_metrics.jsonl",
            1,
            "reply_time_in_minutes.calendar",
            "expected at least 0, got -3",
        ),
        (f"support/{DAY}/ticket_metrics.jsonl", 2, "replies", "expected an integer, got 1.5"),
        (f"support/{DAY}/tickets.jsonl", 2, "id", "expected an integer, got 6.4"),
        (f"support/{DAY}/tickets.jsonl", 3, "group_id", "expected an integer, got 7x"),
        (
            f"web/{DAY}/events.jsonl",
            1,
            "event_timestamp",
            "expected a date from 2000-01-01 "
            f"to {window_end}, got 1767600000000 (1970-01-21): an epoch in another unit?",
        ),
        (
            f"web/{DAY}/events.jsonl",
            3,
            "event_params[*].value.int_value",
            "expected at least 0, got -40",
        ),
    ]
    # Ticket 6 keeps its one version: 6.4 did not become ticket 6.
    assert conn.execute("select record ->> '$.id' from raw_support.tickets").fetchall() == [("6",)]
    assert conn.execute("select count(*) from raw_crm.deals").fetchone()[0] == 2  # 1 and 8


def test_a_date_window_is_a_setting(conn, tmp_path, monkeypatch):
    land(tmp_path, f"crm/{DAY}/deals.jsonl", json_lines(deal("1", createdate="1999-12-31")))
    monkeypatch.setenv("BOUSSOLE_PLAUSIBLE_SINCE", "1990-01-01")
    window = Settings.from_env().plausible_dates
    assert window == PlausibleDates(since=date(1990, 1, 1), days_ahead=2, planned_years=10)
    assert load(conn, tmp_path, "crm", window=window)[f"crm/{DAY}/deals.jsonl"].rows_loaded == 1
    for variable, value in (
        ("BOUSSOLE_PLAUSIBLE_SINCE", "01/01/1990"),
        ("BOUSSOLE_PLAUSIBLE_DAYS_AHEAD", "-1"),
        ("BOUSSOLE_PLANNED_YEARS_AHEAD", "ten"),
    ):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({variable: value})


def test_blank_lines_are_skipped_and_a_bad_byte_costs_one_record(conn, tmp_path):
    good = json.dumps(deal("1")).encode()
    latin = json.dumps(deal("2", dealname="Caf\u00e9")).encode().replace(b"\\u00e9", b"\xe9")
    land(
        tmp_path, f"crm/{DAY}/deals.jsonl", good + b"\n\n   \n" + latin + b"\n" + good[:-1] + b"}\n"
    )
    land(
        tmp_path,
        f"crm/{DAY}/deals_2.jsonl.gz",
        gzip.compress(b"\n" + json.dumps(deal("3")).encode() + b"\n\n"),
    )
    land(
        tmp_path,
        f"crm/{DAY}/deals_3.jsonl",
        json.dumps(deal("4")).encode() + b"\r\n\r\n  \r\n",
    )
    loads = load(conn, tmp_path, "crm")
    # A record's number is its line number; an empty line is no record, a line of spaces a
    # blank one.
    assert quarantine(conn) == [
        (f"crm/{DAY}/deals.jsonl", 3, None, "a blank line"),
        (
            f"crm/{DAY}/deals.jsonl",
            4,
            None,
            f"not UTF-8: byte 0xe9 at position {latin.index(0xE9) + 1} of the line",
        ),
        (f"crm/{DAY}/deals_3.jsonl", 3, None, "a blank line"),
    ]
    assert conn.execute(
        "select _source_file, _record_number from raw_crm.deals order by all"
    ).fetchall() == [
        (f"crm/{DAY}/deals.jsonl", 1),
        (f"crm/{DAY}/deals.jsonl", 5),
        (f"crm/{DAY}/deals_2.jsonl.gz", 2),
        (f"crm/{DAY}/deals_3.jsonl", 1),
    ]
    assert (
        loads[f"crm/{DAY}/deals.jsonl"].rows_read,
        loads[f"crm/{DAY}/deals.jsonl"].rows_loaded,
    ) == (4, 2)
    # The quarantine keeps the line as it came, the bad byte escaped.
    raw = conn.execute(
        "select raw_text from ingestion.quarantine where record_number = 4"
    ).fetchone()[0]
    assert "Caf\\xe9" in raw


def test_empty_deliveries(conn, tmp_path):
    land(tmp_path, f"support/{DAY}/tickets.jsonl", b"")
    land(tmp_path, f"support/{DAY}/users.jsonl", b"\n\n")
    land(tmp_path, f"support/{DAY}/groups.jsonl.gz", b"")
    land(tmp_path, f"spend/{DAY}/fx_rates.csv", "date,currency,rate_to_reporting\n")
    land(tmp_path, f"spend/{DAY}/marketing_spend.csv", b"")
    load(conn, tmp_path, "support")
    load(conn, tmp_path, "spend")
    assert manifest(conn) == [
        (f"spend/{DAY}/fx_rates.csv", "loaded", 0, 0, 0, None),
        (f"spend/{DAY}/marketing_spend.csv", "failed", 0, 0, 0, "the file is empty"),
        (f"support/{DAY}/groups.jsonl.gz", "failed", 0, 0, 0, "the file is empty"),
        (f"support/{DAY}/tickets.jsonl", "loaded", 0, 0, 0, None),
        (f"support/{DAY}/users.jsonl", "loaded", 0, 0, 0, None),
    ]


def test_two_versions_with_one_update_time_and_other_content_are_flagged(conn, tmp_path):
    version = deal("1")
    other = deal("1", amount="99")
    land(tmp_path, f"crm/{DAY}/deals.jsonl", json_lines(version, deal("2"), version))
    land(tmp_path, "crm/2026-01-06/deals.jsonl", json_lines(other, deal("2", amount="7")))
    load(conn, tmp_path, "crm")
    load(conn, tmp_path, "crm", day="2026-01-06")
    # The same version twice is harmless; the first version delivered stays, and each later
    # one with other content is quarantined, naming the one it contradicts.
    assert quarantine(conn) == [
        (
            "crm/2026-01-06/deals.jsonl",
            1,
            "updatedAt",
            f"same id and update time as crm/{DAY}/deals.jsonl record 1, with other content",
        ),
        (
            "crm/2026-01-06/deals.jsonl",
            2,
            "updatedAt",
            f"same id and update time as crm/{DAY}/deals.jsonl record 2, with other content",
        ),
    ]
    assert conn.execute("select count(*) from raw_crm.deals").fetchone()[0] == 3


def test_a_file_delivered_again_with_other_content_replaces_the_earlier_delivery(conn, tmp_path):
    path = f"crm/{DAY}/deals.jsonl"
    land(tmp_path, path, json_lines(deal("1"), deal("2"), deal("3", amount="abc")))
    land(tmp_path, f"crm/{DAY}/deals_copy.jsonl", json_lines(deal("9")))
    load(conn, tmp_path, "crm")
    # Delivered again: record 2 removed, record 3 fixed.
    land(tmp_path, path, json_lines(deal("1"), deal("3")))
    loads = load(conn, tmp_path, "crm")
    assert loads[path].status == "loaded" and loads[path].replaces
    assert conn.execute(
        "select record ->> '$.id', _record_number from raw_crm.deals "
        "where _source_file = ? order by all",
        [path],
    ).fetchall() == [("1", 1), ("3", 2)]
    assert quarantine(conn) == []
    rows = manifest(conn)
    assert [row[:5] for row in rows if row[0] == path] == [
        (path, "replaced", 3, 2, 1),
        (path, "loaded", 2, 2, 0),
    ]
    assert rows[0][5].startswith("delivered again with other content (sha256 ")


def test_the_content_of_a_replaced_delivery_stays_when_another_path_holds_it(conn, tmp_path):
    first = json_lines(deal("1"), deal("2", amount="abc"))
    land(tmp_path, f"crm/{DAY}/deals.jsonl", first)
    load(conn, tmp_path, "crm")
    land(tmp_path, "crm/2026-01-06/deals.jsonl", first)
    load(conn, tmp_path, "crm", day="2026-01-06")
    land(tmp_path, f"crm/{DAY}/deals.jsonl", json_lines(deal("3")))
    load(conn, tmp_path, "crm")
    assert [row[:5] for row in manifest(conn)] == [
        (f"crm/{DAY}/deals.jsonl", "replaced", 2, 1, 1),
        (f"crm/{DAY}/deals.jsonl", "loaded", 1, 1, 0),
        ("crm/2026-01-06/deals.jsonl", "loaded", 2, 1, 1),
    ]
    assert conn.execute(
        "select _source_file, record ->> '$.id' from raw_crm.deals order by all"
    ).fetchall() == [("crm/2026-01-05/deals.jsonl", "3"), ("crm/2026-01-06/deals.jsonl", "1")]
    assert [row[:2] for row in quarantine(conn)] == [("crm/2026-01-06/deals.jsonl", 2)]


def test_every_entry_of_the_landing_folder_is_loaded_or_ignored_with_a_reason(conn, tmp_path):
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    land(outside, "deals.jsonl", json_lines(deal("666")))
    land(outside, f"{DAY}/deals.jsonl", json_lines(deal("667")))
    land(landing, f"crm/{DAY}/deals.jsonl", json_lines(deal("1")))
    land(landing, "crm/2026-01-06/deals_1.jsonl", json_lines(deal("2")))
    # A link inside the landing folder to a file inside it is followed.
    (landing / "crm/2026-01-06/deals_2.jsonl").symlink_to(landing / f"crm/{DAY}/deals.jsonl")
    (landing / f"crm/{DAY}/deals_3.jsonl").symlink_to(outside / "deals.jsonl")
    (landing / "crm/2026-01-07").symlink_to(outside / DAY)
    (landing / f"crm/{DAY}/contacts.jsonl").mkdir()
    land(landing, f"crm/{DAY}/leads.jsonl", json_lines({"id": "1"}))
    land(landing, f"crm/{DAY}/deals.xlsx", b"PK")
    land(landing, "crm/2026-02-30/deals.jsonl", json_lines(deal("3")))
    land(landing, "crm/20260108/deals.jsonl", json_lines(deal("4")))
    land(landing, "crm/notes.txt", "")
    land(landing, f"hubspot/{DAY}/deals.jsonl", json_lines(deal("5")))
    land(landing, "README.md", "")

    ignored = survey_landing(landing)
    contract = "not a file type of the contract (.jsonl.gz, .ndjson.gz, .jsonl, .ndjson, .json, "
    assert [(e.relative_path, e.source, e.reason) for e in ignored] == [
        ("README.md", None, "not a source folder: the sources are crm, web, support, spend"),
        ("hubspot", None, "not a source folder: the sources are crm, web, support, spend"),
        ("crm/2026-01-07", "crm", "a symbolic link that leaves the landing folder"),
        ("crm/2026-02-30", "crm", "not an extract date folder (YYYY-MM-DD, a real date)"),
        ("crm/20260108", "crm", "not an extract date folder (YYYY-MM-DD, a real date)"),
        ("crm/notes.txt", "crm", "not an extract date folder (YYYY-MM-DD, a real date)"),
        (f"crm/{DAY}/contacts.jsonl", "crm", "a folder where files are expected"),
        (f"crm/{DAY}/deals.xlsx", "crm", contract + ".csv, .parquet)"),
        (f"crm/{DAY}/deals_3.jsonl", "crm", "a symbolic link that leaves the landing folder"),
        (
            f"crm/{DAY}/leads.jsonl",
            "crm",
            "unknown object: the crm objects are contacts, companies, deals, pipelines, owners, "
            "calls, emails, meetings, email_events, email_campaigns, feedback_submissions",
        ),
    ]
    for day in (DAY, "2026-01-06", "2026-01-07"):
        load(conn, landing, "crm", day=day)
    record_ignored(conn, ignored, ["crm"])
    assert conn.execute(
        "select record ->> '$.id', _source_file from raw_crm.deals order by all"
    ).fetchall() == [("1", f"crm/{DAY}/deals.jsonl"), ("2", "crm/2026-01-06/deals_1.jsonl")]
    statuses = conn.execute(
        "select status, count(*) from ingestion.load_manifest group by all order by all"
    ).fetchall()
    # The link inside the folder delivers the same content as the file it points to.
    assert statuses == [("duplicate", 1), ("ignored", len(ignored)), ("loaded", 2)]
    # Recorded again, an ignored entry that is gone leaves the manifest.
    record_ignored(conn, [e for e in ignored if e.source == "crm"], ["crm", "web"])
    assert (
        conn.execute(
            "select count(*) from ingestion.load_manifest where status = 'ignored'"
        ).fetchone()[0]
        == len(ignored) - 2
    )
    # Nothing left to ignore: nothing recorded.
    record_ignored(conn, [], list(SOURCES))
    assert conn.execute(
        "select count(*) from ingestion.load_manifest where status = 'ignored'"
    ).fetchone() == (0,)

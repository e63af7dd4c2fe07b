"""Loading landed files: set-based, once per content, nothing lost."""

import gzip
import json
from datetime import date

import duckdb
import pytest

from boussole.ingestion.contracts import landed_files
from boussole.ingestion.loader import load_files


@pytest.fixture
def conn():
    connection = duckdb.connect()
    yield connection
    connection.close()


def write_day(landing, source, day, name, content: bytes):
    path = landing / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def load_day(conn, landing, source, day):
    files, _ = landed_files(landing, source, date.fromisoformat(day))
    return {load.relative_path: load for load in load_files(conn, files, landing)}


def test_jsonl_records_keep_lineage_and_bad_lines_go_to_quarantine(conn, tmp_path):
    lines = [
        json.dumps({"id": "1", "properties": {"amount": "10.5", "dealstage": "won"}}),
        '{"id": "2", "properties": ',  # truncated line
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "3", "properties": {"amount": "7", "dealstage": "won"}}),
    ]
    write_day(tmp_path, "crm", "2026-01-05", "deals.jsonl", ("\n".join(lines) + "\n").encode())
    load = load_day(conn, tmp_path, "crm", "2026-01-05")["crm/2026-01-05/deals.jsonl"]

    assert (load.status, load.rows_read, load.rows_loaded, load.rows_quarantined) == (
        "loaded",
        4,
        2,
        2,
    )
    raw = conn.execute(
        "select record ->> '$.id', _record_number, _extract_date::varchar, _source_file "
        "from raw_crm.deals order by _record_number"
    ).fetchall()
    assert raw == [
        ("1", 1, "2026-01-05", "crm/2026-01-05/deals.jsonl"),
        ("3", 4, "2026-01-05", "crm/2026-01-05/deals.jsonl"),
    ]
    quarantined = conn.execute(
        "select record_number, reason, raw_text from ingestion.quarantine order by record_number"
    ).fetchall()
    assert quarantined == [
        (2, "malformed JSON", lines[1]),
        (3, "record is not a JSON object", lines[2]),
    ]
    # The manifest holds the counts of the four lines above: two loaded, two quarantined.
    assert conn.execute(
        "select file_path, status, rows_read, rows_loaded, rows_quarantined "
        "from ingestion.load_manifest"
    ).fetchall() == [("crm/2026-01-05/deals.jsonl", "loaded", 4, 2, 2)]


def test_same_content_is_ingested_once_even_under_another_name(conn, tmp_path):
    ticket = {"id": 1, "status": "open", "created_at": "2026-01-05T09:00:00Z"}
    content = (json.dumps(ticket) + "\n").encode()
    write_day(tmp_path, "support", "2026-01-05", "tickets.jsonl", content)
    first = load_day(conn, tmp_path, "support", "2026-01-05")
    write_day(tmp_path, "support", "2026-01-06", "tickets.jsonl", content)
    second = load_day(conn, tmp_path, "support", "2026-01-05")
    third = load_day(conn, tmp_path, "support", "2026-01-06")

    assert first["support/2026-01-05/tickets.jsonl"].status == "loaded"
    assert second["support/2026-01-05/tickets.jsonl"].status == "already_loaded"
    copy = third["support/2026-01-06/tickets.jsonl"]
    assert (copy.status, copy.failure_reason) == (
        "duplicate",
        "same content as support/2026-01-05/tickets.jsonl",
    )
    assert conn.execute(
        "select file_path, status, rows_loaded from ingestion.load_manifest order by file_path"
    ).fetchall() == [
        ("support/2026-01-05/tickets.jsonl", "loaded", 1),
        ("support/2026-01-06/tickets.jsonl", "duplicate", 0),
    ]
    assert conn.execute("select count(*) from raw_support.tickets").fetchone()[0] == 1


def test_unreadable_files_are_recorded_as_failed_and_others_still_load(conn, tmp_path):
    ticket = {"id": 1, "status": "new", "created_at": "2026-01-05T09:00:00Z"}
    good = gzip.compress((json.dumps(ticket) + "\n").encode())
    write_day(tmp_path, "support", "2026-01-05", "tickets.jsonl.gz", good)
    write_day(tmp_path, "support", "2026-01-05", "users.jsonl.gz", good[: len(good) // 2])
    write_day(tmp_path, "support", "2026-01-05", "groups.jsonl.gz", b"")
    # Empty lines only: a delivery of nothing, not a failure.
    write_day(tmp_path, "support", "2026-01-05", "organizations.jsonl", b"\n\n")
    loads = load_day(conn, tmp_path, "support", "2026-01-05")

    assert loads["support/2026-01-05/tickets.jsonl.gz"].rows_loaded == 1
    truncated = loads["support/2026-01-05/users.jsonl.gz"]
    assert truncated.status == "failed" and "gzip" in truncated.failure_reason.lower()
    assert loads["support/2026-01-05/groups.jsonl.gz"].failure_reason == "the file is empty"
    nothing = loads["support/2026-01-05/organizations.jsonl"]
    assert (nothing.status, nothing.rows_read) == ("loaded", 0)
    assert (
        conn.execute(
            "select count(*) from ingestion.load_manifest where status = 'failed'"
        ).fetchone()[0]
        == 2
    )
    assert conn.execute("select count(*) from raw_support.users").fetchone()[0] == 0


def test_json_document_csv_latin1_bom_and_parquet(conn, tmp_path):
    pipelines = {"results": [{"id": "p1", "stages": []}, {"id": "p2", "stages": []}]}
    write_day(tmp_path, "crm", "2026-01-05", "pipelines.json", json.dumps(pipelines).encode())
    write_day(
        tmp_path,
        "spend",
        "2026-01-05",
        "marketing_spend.csv",
        "date,channel,campaign,spend,currency\n2026-01-05,PAID_SEARCH,Été,12.50,EUR\n".encode(
            "latin-1"
        ),
    )
    write_day(
        tmp_path,
        "spend",
        "2026-01-05",
        "fx_rates.csv",
        b"\xef\xbb\xbfdate,currency,rate_to_reporting\n2026-01-05,USD,0.9\n",
    )
    parquet = tmp_path / "web" / "2026-01-05" / "events_20260105.parquet"
    parquet.parent.mkdir(parents=True)
    conn.execute(
        f"copy (select 1767600000000000 as event_timestamp, 'page_view' as event_name, "
        "'u1' as user_pseudo_id, "
        f"[{{'key': 'ga_session_id', 'value': {{'int_value': 7}}}}] as event_params) to '{parquet}'"
    )
    load_day(conn, tmp_path, "crm", "2026-01-05")
    load_day(conn, tmp_path, "spend", "2026-01-05")
    load_day(conn, tmp_path, "web", "2026-01-05")

    assert conn.execute(
        "select record ->> '$.id', _record_number from raw_crm.pipelines order by 2"
    ).fetchall() == [("p1", 1), ("p2", 2)]
    assert conn.execute(
        "select record ->> '$.campaign' from raw_spend.marketing_spend"
    ).fetchone() == ("Été",)
    assert conn.execute("select record ->> '$.date' from raw_spend.fx_rates").fetchone() == (
        "2026-01-05",
    )
    assert conn.execute(
        "select record ->> '$.event_params[0].value.int_value' from raw_web.events"
    ).fetchone() == ("7",)


def test_landed_files_match_contract_names_and_split_exports(tmp_path):
    for name in ("events.jsonl", "events_20260105.ndjson.gz", "events_page-2.jsonl", "notes.txt"):
        write_day(tmp_path, "web", "2026-01-05", name, b"{}\n")
    for name in ("email_events_2.jsonl", "emails.jsonl", "deals.xlsx"):
        write_day(tmp_path, "crm", "2026-01-05", name, b"{}\n")
    known, unknown = landed_files(tmp_path, "web", date(2026, 1, 5))
    assert sorted(f.path.name for f in known) == [
        "events.jsonl",
        "events_20260105.ndjson.gz",
        "events_page-2.jsonl",
    ]
    assert [p.name for p in unknown] == ["notes.txt"]
    crm_known, crm_unknown = landed_files(tmp_path, "crm", date(2026, 1, 5))
    assert {f.path.name: f.landing_object.name for f in crm_known} == {
        "email_events_2.jsonl": "email_events",
        "emails.jsonl": "emails",
    }
    assert [p.name for p in crm_unknown] == ["deals.xlsx"]
    assert {(f.landing_object.name, f.extract_date, f.file_format) for f in known} == {
        ("events", date(2026, 1, 5), "jsonl")
    }


def test_every_landing_object_has_field_rules_and_a_malformed_rule_is_refused():
    from boussole.ingestion.contracts import LANDING_OBJECTS, FieldRule

    assert all(landing_object.rules for landing_object in LANDING_OBJECTS)
    for bad in (
        {"kind": "decimal"},
        {"kind": "enum"},
        {"kind": "integer", "allowed": ("1",)},
        {"kind": "timestamp", "minimum": 0},
        {"kind": "number", "planned": True},
    ):
        with pytest.raises(ValueError, match=r"^x\.y: "):
            FieldRule("x.y", **bad)


def test_quarantine_masks_personal_fields_and_keeps_what_fixes_the_export(conn, tmp_path):
    from boussole.ingestion.contracts import LANDING_OBJECTS
    from boussole.ingestion.loader import MASKED
    from orchestration.assets.ingestion import _quarantine_preview

    email, phone = "jeanne.durand@example.fr", "+33 6 11 22 33 44"
    bad_stage = {
        "id": "7",
        "properties": {
            "email": email,
            "firstname": "Jeanne",
            "lastname": "Durand",
            "phone": phone,
            "mobilephone": None,
            "lifecyclestage": "astronaut",
            "createdate": "2026-01-04T10:00:00Z",
        },
        "updatedAt": "2026-01-04T10:00:00Z",
    }
    lines = [
        json.dumps(bad_stage),
        # Not JSON: where its personal values are cannot be told, so none of it is kept.
        '{"id": "8", "properties": {"email": "paul.martin@example.fr", "firstname": "Pa',
    ]
    write_day(tmp_path, "crm", "2026-01-05", "contacts.jsonl", ("\n".join(lines) + "\n").encode())
    load_day(conn, tmp_path, "crm", "2026-01-05")

    rows = conn.execute(
        "select file_path, record_number, field, reason, raw_text from ingestion.quarantine "
        "order by record_number"
    ).fetchall()
    assert [row[:3] for row in rows] == [
        ("crm/2026-01-05/contacts.jsonl", 1, "properties.lifecyclestage"),
        ("crm/2026-01-05/contacts.jsonl", 2, None),
    ]
    # The offending value (not personal) is in the reason; the personal fields are masked, a
    # null one left as it was, and the rest of the record kept.
    assert "got astronaut" in rows[0][3] and rows[1][3] == "malformed JSON"
    kept = json.loads(rows[0][4])
    assert kept["id"] == "7" and kept["updatedAt"] == bad_stage["updatedAt"]
    assert kept["properties"] == {
        **bad_stage["properties"],
        "email": MASKED,
        "firstname": MASKED,
        "lastname": MASKED,
        "phone": MASKED,
    }
    assert rows[1][4].startswith("(not kept: a crm contacts record that is not a JSON object")
    # What Dagster shows of the quarantine (the ingestion asset's metadata) holds none of it.
    (checksum,) = conn.execute("select distinct file_sha256 from ingestion.quarantine").fetchone()
    shown = " ".join(_quarantine_preview(conn, "crm", [checksum]).values())
    assert "properties.lifecyclestage" in shown
    for value in (email, "Jeanne", "Durand", phone, "paul.martin"):
        assert all(value not in text for _, _, _, _, text in rows)
        assert value not in shown
    # Every object whose records hold personal data names those fields.
    personal = {o.name for o in LANDING_OBJECTS if o.personal}
    assert {"contacts", "owners", "users", "email_events", "ticket_comments"} <= personal


def test_a_record_quarantined_by_hand_is_masked_too(conn, tmp_path):
    from boussole.ingestion.loader import MASKED
    from boussole.poison import RecordRef, quarantine_records

    user = {"id": 401, "name": "Anne Martin", "email": "anne.martin@example.fr", "role": "agent"}
    write_day(tmp_path, "support", "2026-01-05", "users.jsonl", (json.dumps(user) + "\n").encode())
    load_day(conn, tmp_path, "support", "2026-01-05")
    done, _ = quarantine_records(
        conn,
        [RecordRef.parse("support/2026-01-05/users.jsonl:1")],
        "wrong person",
        {"sources": {}, "nodes": {}},
    )
    assert done[0].record_id == "401"
    (raw_text,) = conn.execute("select raw_text from ingestion.quarantine").fetchone()
    assert json.loads(raw_text) == {**user, "name": MASKED, "email": MASKED}

"""Bad inputs for quarantine tests. Each fault changes or adds one file of the first extract
day, after the clean data is written; every other file stays byte-identical."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ._common import LandingWriter, dumps, iso_ms
from .web import parquet_schema

FAULTS = frozenset(
    {
        "malformed_json_line",
        "bad_amount",
        "bad_date",
        "missing_id",
        "unknown_enum",
        "changed_type",
        "truncated_gzip",
        "wrong_format",
        "empty_file",
        "latin1_csv",
        "bom_csv",
        "parquet_events",
        "gzip_events",
        "unknown_field",
    }
)
# Ticket ids far above the simulated ones, so that no later extract updates them.
BAD_DATE_TICKET_ID = 9_000_001
UNKNOWN_ENUM_TICKET_ID = 9_000_002


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _write_lines(writer: LandingWriter, path: Path, lines: list[str]) -> None:
    writer.put(path, ("\n".join(lines) + "\n").encode())


def _first(lines: list[str], fallback: dict[str, Any]) -> dict[str, Any]:
    return json.loads(lines[0]) if lines else fallback


def _missing_id(writer: LandingWriter, day: date) -> None:
    path = writer.path("crm", day, "contacts.jsonl")
    lines = _lines(path)
    contact = _first(lines, {"id": "0", "properties": {"email": "sans.id@example.com"}})
    del contact["id"]
    _write_lines(writer, path, [*lines, dumps(contact)])


def _unknown_field(writer: LandingWriter, day: date) -> None:
    path = writer.path("crm", day, "contacts.jsonl")
    lines = _lines(path)
    for i in range(0, len(lines), 5):  # every fifth contact, as a new custom property would
        contact = json.loads(lines[i])
        if "properties" in contact:
            contact["properties"]["boussole_lead_score"] = str(40 + i % 60)
            contact["properties"]["hs_persona"] = "persona_2"
            lines[i] = dumps(contact)
    _write_lines(writer, path, lines)


def _bad_amount(writer: LandingWriter, day: date) -> None:
    """A newer version of an existing deal whose amount is not a number."""
    path = writer.path("crm", day, "deals.jsonl")
    lines = _lines(path)
    deal = _first(lines, {"id": "1", "properties": {}, "updatedAt": iso_ms(0)})
    updated = datetime.fromisoformat(deal["updatedAt"]) + timedelta(seconds=1)
    deal["properties"]["amount"] = "abc"
    deal["updatedAt"] = deal["properties"]["hs_lastmodifieddate"] = iso_ms(
        int(updated.timestamp() * 1000)
    )
    _write_lines(writer, path, [*lines, dumps(deal)])


def _malformed_json_line(writer: LandingWriter, day: date) -> None:
    path = writer.path("crm", day, "deals.jsonl")
    lines = _lines(path) or ['{"id":"1","properties":{"amount":"100.00"}}']
    _write_lines(writer, path, [lines[0], lines[0][: len(lines[0]) // 2], *lines[1:]])


def _bad_ticket(writer: LandingWriter, day: date, ticket_id: int, **changes: str) -> None:
    path = writer.path("support", day, "tickets.jsonl")
    lines = _lines(path)
    ticket = _first(
        lines,
        {
            "status": "new",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        },
    )
    ticket.update(
        id=ticket_id,
        url=f"https://boussole-demo.zendesk.com/api/v2/tickets/{ticket_id}.json",
        **changes,
    )
    _write_lines(writer, path, [*lines, dumps(ticket)])


def _bad_date(writer: LandingWriter, day: date) -> None:
    _bad_ticket(writer, day, BAD_DATE_TICKET_ID, created_at="not-a-date")


def _unknown_enum(writer: LandingWriter, day: date) -> None:
    _bad_ticket(writer, day, UNKNOWN_ENUM_TICKET_ID, status="escalated")


def _changed_type(writer: LandingWriter, day: date) -> None:
    path = writer.path("web", day, "events.jsonl")
    lines = _lines(path)
    event = _first(lines, {"event_name": "page_view", "event_params": []})
    event["event_timestamp"] = "abc"
    _write_lines(writer, path, [*lines, dumps(event)])


def _truncated_gzip(writer: LandingWriter, day: date) -> None:
    source = writer.path("support", day, "tickets.jsonl")
    data = source.read_bytes() if source.exists() else b'{"id": 1}\n' * 200
    packed = gzip.compress(data, mtime=0)
    writer.write_bytes("support", day, "tickets_extra.jsonl.gz", packed[: len(packed) // 2])


def _wrong_format(writer: LandingWriter, day: date) -> None:
    """calls.jsonl holding CSV text, as when an export job is misconfigured."""
    path = writer.path("crm", day, "calls.jsonl")
    rows = ["id,hs_timestamp,hubspot_owner_id,hs_call_status"]
    columns = ("hs_timestamp", "hubspot_owner_id", "hs_call_status")
    for line in _lines(path) or ['{"id":"1","properties":{}}']:
        call = json.loads(line)
        rows.append(",".join([call["id"], *(call["properties"].get(k) or "" for k in columns)]))
    _write_lines(writer, path, rows)


def _empty_file(writer: LandingWriter, day: date) -> None:
    """An empty gzip file is corrupt (an empty JSON-lines file is a delivery of nothing)."""
    writer.write_bytes("support", day, "groups.jsonl.gz", b"")


def _latin1_csv(writer: LandingWriter, day: date) -> None:
    """The campaign names carry accents ("Prévente Été"), which Latin-1 encodes differently."""
    path = writer.path("spend", day, "marketing_spend.csv")
    writer.put(path, path.read_text(encoding="utf-8").encode("latin-1"))


def _bom_csv(writer: LandingWriter, day: date) -> None:
    path = writer.path("spend", day, "fx_rates.csv")
    writer.put(path, b"\xef\xbb\xbf" + path.read_bytes())


def _events_format(writer: LandingWriter, day: date, faults: frozenset[str]) -> None:
    """events.parquet and/or events.jsonl.gz instead of events.jsonl (both: half each)."""
    path = writer.path("web", day, "events.jsonl")
    lines = _lines(path)
    if path.exists():
        writer.remove(path)
    parquet, gzipped = "parquet_events" in faults, "gzip_events" in faults
    split = len(lines) // 2 if parquet and gzipped else (len(lines) if parquet else 0)
    if parquet:
        _write_parquet(writer, day, [json.loads(line) for line in lines[:split]])
    if gzipped:
        data = ("\n".join(lines[split:]) + "\n").encode()
        writer.write_bytes("web", day, "events.jsonl.gz", gzip.compress(data, mtime=0))


def _write_parquet(writer: LandingWriter, day: date, events: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    if any(not isinstance(e.get("event_timestamp"), int) for e in events):
        # changed_type as well: the column becomes a string column, as a drifting export would
        i = schema.get_field_index("event_timestamp")
        schema = schema.set(i, pa.field("event_timestamp", pa.string()))
        for event in events:
            event["event_timestamp"] = str(event["event_timestamp"])
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(events, schema=schema), buffer)
    writer.write_bytes("web", day, "events.parquet", buffer.getvalue())


# Record-level faults first (they edit JSONL files), then the ones that change file formats.
_STEPS: tuple[tuple[str, Callable[[LandingWriter, date], None]], ...] = (
    ("missing_id", _missing_id),
    ("unknown_field", _unknown_field),
    ("bad_amount", _bad_amount),
    ("malformed_json_line", _malformed_json_line),
    ("bad_date", _bad_date),
    ("unknown_enum", _unknown_enum),
    ("changed_type", _changed_type),
    ("truncated_gzip", _truncated_gzip),
    ("wrong_format", _wrong_format),
    ("empty_file", _empty_file),
    ("latin1_csv", _latin1_csv),
    ("bom_csv", _bom_csv),
)


def apply_faults(writer: LandingWriter, day: date, faults: frozenset[str]) -> None:
    for name, step in _STEPS:
        if name in faults:
            step(writer, day)
    if faults & {"parquet_events", "gzip_events"}:
        _events_format(writer, day, faults)

"""The sample-data generator: deterministic, in the landing layout, in the vendors' shapes,
incremental, and each fault producing exactly its bad input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from boussole.ingestion.contracts import SAMPLE_MARKER
from boussole.sample_data import FAULTS, GenerationSummary, SampleScale, generate, web

PARIS = ZoneInfo("Europe/Paris")
START = date(2026, 3, 16)  # spans the switch to summer time (29 March) and a month start
END = date(2026, 4, 5)
SMALL = SampleScale(
    web_events_per_day=150,
    deals_per_day=2.0,
    contacts_per_day=6.0,
    tickets_per_day=4.0,
    companies=25,
    owners=5,
)
TINY = SampleScale(
    web_events_per_day=60,
    deals_per_day=1.0,
    contacts_per_day=2.0,
    tickets_per_day=2.0,
    companies=8,
    owners=4,
)

OBJECTS = {
    "crm": {
        "contacts.jsonl",
        "companies.jsonl",
        "deals.jsonl",
        "owners.jsonl",
        "pipelines.json",
        "calls.jsonl",
        "emails.jsonl",
        "meetings.jsonl",
        "email_events.jsonl",
        "email_campaigns.jsonl",
        "feedback_submissions.jsonl",
    },
    "web": {"events.jsonl"},
    "support": {
        "tickets.jsonl",
        "ticket_metrics.jsonl",
        "ticket_comments.jsonl",
        "users.jsonl",
        "groups.jsonl",
        "organizations.jsonl",
        "satisfaction_ratings.jsonl",
    },
    "spend": {"marketing_spend.csv", "sales_costs.csv", "fx_rates.csv"},
}
HUBSPOT_OBJECT = {"id", "properties", "createdAt", "updatedAt", "archived"}
REQUIRED_KEYS = {
    "crm/contacts": HUBSPOT_OBJECT,
    "crm/companies": HUBSPOT_OBJECT,
    "crm/deals": HUBSPOT_OBJECT | {"associations"},
    "crm/owners": {"id", "email", "firstName", "lastName", "teams", "archived"},
    "crm/calls": HUBSPOT_OBJECT | {"associations"},
    "crm/emails": HUBSPOT_OBJECT | {"associations"},
    "crm/meetings": HUBSPOT_OBJECT | {"associations"},
    "crm/email_events": {"id", "type", "created", "recipient", "emailCampaignId", "sentBy"},
    "crm/email_campaigns": {"id", "name", "subject", "type"},
    "crm/feedback_submissions": {"id", "properties", "createdAt", "updatedAt"},
    "web/events": {
        "event_date",
        "event_timestamp",
        "event_name",
        "event_params",
        "user_pseudo_id",
        "user_id",
        "user_first_touch_timestamp",
        "device",
        "geo",
        "traffic_source",
        "collected_traffic_source",
        "ecommerce",
        "platform",
        "stream_id",
    },
    "support/tickets": {
        "id",
        "created_at",
        "updated_at",
        "status",
        "priority",
        "type",
        "via",
        "requester_id",
        "submitter_id",
        "assignee_id",
        "group_id",
        "organization_id",
        "subject",
        "tags",
        "satisfaction_rating",
        "custom_fields",
    },
    "support/ticket_metrics": {
        "id",
        "ticket_id",
        "created_at",
        "updated_at",
        "solved_at",
        "assigned_at",
        "initially_assigned_at",
        "reopens",
        "replies",
        "reply_time_in_minutes",
        "first_resolution_time_in_minutes",
        "full_resolution_time_in_minutes",
        "agent_wait_time_in_minutes",
        "requester_wait_time_in_minutes",
    },
    "support/ticket_comments": {"id", "ticket_id", "author_id", "public", "created_at"},
    "support/users": {"id", "name", "email", "role", "organization_id", "time_zone"},
    "support/groups": {"id", "name"},
    "support/organizations": {"id", "name", "domain_names"},
    "support/satisfaction_ratings": {"id", "ticket_id", "score", "created_at", "updated_at"},
}
REQUIRED_PROPERTIES = {
    "crm/contacts": {
        "email",
        "firstname",
        "lastname",
        "phone",
        "lifecyclestage",
        "createdate",
        "hs_lifecyclestage_lead_date",
        "hs_lifecyclestage_marketingqualifiedlead_date",
        "hs_lifecyclestage_salesqualifiedlead_date",
        "hs_lifecyclestage_customer_date",
        "hs_analytics_source",
        "hs_analytics_source_data_1",
        "country",
        "associatedcompanyid",
        "hubspot_owner_id",
        "lastmodifieddate",
    },
    "crm/companies": {
        "name",
        "domain",
        "country",
        "industry",
        "numberofemployees",
        "createdate",
        "hubspot_owner_id",
    },
    "crm/deals": {
        "dealname",
        "amount",
        "deal_currency_code",
        "dealstage",
        "pipeline",
        "createdate",
        "closedate",
        "hubspot_owner_id",
        "product_line",
        "recurring_revenue_amount",
        "contract_end_date",
    },
    "crm/feedback_submissions": {
        "hs_survey_type",
        "hs_response_value",
        "hs_submission_timestamp",
        "hs_contact_id",
    },
}
CSV_HEADERS = {
    "marketing_spend.csv": ["date", "channel", "campaign", "spend", "currency"],
    "sales_costs.csv": ["month", "team", "cost", "currency"],
    "fx_rates.csv": ["date", "currency", "rate_to_reporting"],
}
# Records whose updated timestamp names the extract day they land in (after the full load).
UPDATED_FIELD = {
    "crm/contacts": "updatedAt",
    "crm/companies": "updatedAt",
    "crm/deals": "updatedAt",
    "crm/meetings": "updatedAt",
    "support/tickets": "updated_at",
    "support/ticket_metrics": "updated_at",
}


def tree(root: Path) -> dict[str, bytes]:
    """The extracts (not the marker of the generated sample, boussole/sample_data/marker.py)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != SAMPLE_MARKER
    }


def records(root: Path, source: str, obj: str) -> list[tuple[date, dict]]:
    """(extract date, record) for every line of every day's <obj>.jsonl, in day order."""
    out = []
    for path in sorted((root / source).glob(f"*/{obj}.jsonl")):
        day = date.fromisoformat(path.parent.name)
        out.extend((day, json.loads(line)) for line in path.read_text("utf-8").splitlines())
    return out


def paris_date(iso: str) -> date:
    return datetime.fromisoformat(iso).astimezone(PARIS).date()


def stage_metadata(root: Path) -> dict[str, dict[str, str]]:
    doc = json.loads((root / "crm" / START.isoformat() / "pipelines.json").read_text("utf-8"))
    return {s["id"]: s["metadata"] for p in doc["results"] for s in p["stages"]}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    root = tmp_path_factory.mktemp("landing")
    calls: list[tuple[int, int]] = []
    summary = generate(
        root,
        start=START,
        end=END,
        scale=SMALL,
        progress=lambda done, total: calls.append((done, total)),
    )
    days = (END - START).days + 1
    assert calls == [(i, days) for i in range(1, days + 1)]
    return root, summary


@pytest.fixture(scope="module")
def clean_tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("clean")
    generate(root, start=START, end=START + timedelta(days=1), scale=TINY)
    return tree(root)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(
    sample: tuple[Path, GenerationSummary], tmp_path: Path
) -> None:
    root, _ = sample
    generate(tmp_path / "again", start=START, end=END, scale=SMALL)
    first, again = tree(root), tree(tmp_path / "again")
    assert first.keys() == again.keys()
    assert [k for k in first if first[k] != again[k]] == []

    generate(tmp_path / "other", seed=7, start=START, end=START, scale=SMALL)
    other = tree(tmp_path / "other")
    day = START.isoformat()
    for name in ("crm/{}/contacts.jsonl", "web/{}/events.jsonl", "support/{}/tickets.jsonl"):
        assert other[name.format(day)] != first[name.format(day)]


def test_sources_draw_from_independent_streams(tmp_path: Path) -> None:
    """More web traffic must not change the CRM: each source has its own random stream."""
    generate(tmp_path / "a", start=START, end=START, scale=TINY)
    bigger = SampleScale(**{**TINY.__dict__, "web_events_per_day": 300})
    generate(tmp_path / "b", start=START, end=START, scale=bigger)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert {k for k in a if a[k] != b.get(k)} == {f"web/{START}/events.jsonl"}


# --- layout and shapes --------------------------------------------------------------------------


def test_layout_matches_the_landing_contract(sample: tuple[Path, GenerationSummary]) -> None:
    root, summary = sample
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != SAMPLE_MARKER
    )
    assert len(files) == summary.files_written
    # The marker that tells the sample from real data lists every file, with its size.
    listed = json.loads((root / SAMPLE_MARKER).read_text())["files"]
    assert listed == {name: (root / name).stat().st_size for name in files}
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    assert summary.extract_dates == days
    pattern = re.compile(r"(crm|web|support|spend)/(\d{4}-\d{2}-\d{2})/([a-z_]+\.(jsonl|json|csv))")
    seen_days = set()
    for name in files:
        match = pattern.fullmatch(name)
        assert match, name
        source, day, file_name = match.group(1), date.fromisoformat(match.group(2)), match.group(3)
        assert START <= day <= END
        assert file_name in OBJECTS[source], name
        seen_days.add(day)
    assert seen_days == set(days)
    for day in days:  # every day has web traffic, spend and FX rates
        for required in (
            "web/{}/events.jsonl",
            "spend/{}/marketing_spend.csv",
            "spend/{}/fx_rates.csv",
        ):
            assert required.format(day) in files
    assert {n.split("/")[2] for n in files if n.startswith(f"crm/{START}")} == OBJECTS["crm"]
    assert sum(1 for n in files if n.endswith("pipelines.json")) == 1
    # sales costs on the first extract day and the first day of each month
    assert [n for n in files if n.endswith("sales_costs.csv")] == [
        f"spend/{START}/sales_costs.csv",
        "spend/2026-04-01/sales_costs.csv",
    ]


def test_every_record_parses_and_has_the_contract_keys(
    sample: tuple[Path, GenerationSummary],
) -> None:
    root, summary = sample
    counted: dict[str, int] = {}
    for key, required in REQUIRED_KEYS.items():
        source, obj = key.split("/")
        rows = records(root, source, obj)
        assert rows, key
        counted[key] = len(rows)
        for _, record in rows:
            assert required <= record.keys(), (key, required - record.keys())
            if key in REQUIRED_PROPERTIES:
                missing = REQUIRED_PROPERTIES[key] - record["properties"].keys()
                assert not missing, (key, missing)
    for path in root.glob("spend/*/*.csv"):
        with path.open(encoding="utf-8", newline="") as f:
            rows_csv = list(csv.reader(f))
        assert rows_csv[0] == CSV_HEADERS[path.name]
        assert all(len(r) == len(rows_csv[0]) for r in rows_csv)
    assert {k: v for k, v in summary.rows_by_object.items() if k in counted} == counted


def test_vendor_value_conventions(sample: tuple[Path, GenerationSummary]) -> None:
    root, _ = sample
    deals = [r for _, r in records(root, "crm", "deals")]
    assert all(re.fullmatch(r"\d+", d["id"]) for d in deals)  # HubSpot: numeric strings
    assert all(re.fullmatch(r"\d+\.\d{2}", d["properties"]["amount"]) for d in deals)
    currencies = [d["properties"]["deal_currency_code"] for d in deals]
    assert set(currencies) <= {"EUR", "USD", "GBP"}
    assert len(currencies) / 2 < currencies.count("EUR") < len(currencies)  # mostly EUR
    assert any(d["properties"]["recurring_revenue_amount"] for d in deals)
    assert any(d["properties"]["contract_end_date"] for d in deals)
    contacts = [r for _, r in records(root, "crm", "contacts")]
    lead_dates = [c["properties"]["hs_lifecyclestage_lead_date"] for c in contacts]
    assert any(re.fullmatch(r"\d{13}", d) for d in lead_dates)  # epoch milliseconds
    assert any("T" in d for d in lead_dates)  # ISO-8601
    assert any(c["archived"] for c in contacts)
    tickets = [r for _, r in records(root, "support", "tickets")]
    assert all(isinstance(t["id"], int) for t in tickets)  # Zendesk: integers
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["updated_at"]) for t in tickets)
    assert {t["status"] for t in tickets} <= {
        "new",
        "open",
        "pending",
        "hold",
        "solved",
        "closed",
        "deleted",
    }
    assert {t["via"]["channel"] for t in tickets} <= {"web", "email", "chat", "api"}
    assert {t["priority"] for t in tickets} <= {"low", "normal", "high", "urgent"}
    assert {t["satisfaction_rating"]["score"] for t in tickets} <= {
        "unoffered",
        "offered",
        "good",
        "bad",
    }
    domains = {c["properties"]["domain"] for _, c in records(root, "crm", "companies")}
    orgs = [o for _, o in records(root, "support", "organizations")]
    assert {d for o in orgs for d in o["domain_names"]} == domains
    crm_emails = {c["properties"]["email"] for c in contacts}
    users = [u for _, u in records(root, "support", "users")]
    requesters = {u["email"] for u in users if u["role"] == "end-user"}
    assert requesters & crm_emails  # the requester email is the CRM contact email
    with (root / "spend" / str(END) / "fx_rates.csv").open(encoding="utf-8") as f:
        fx = list(csv.DictReader(f))
    expected = [(str(END), c) for c in ("EUR", "USD", "GBP")]
    assert [(r["date"], r["currency"]) for r in fx] == expected
    assert float(fx[0]["rate_to_reporting"]) == 1.0


def test_pipelines_tell_won_and_lost_by_metadata_only(
    sample: tuple[Path, GenerationSummary],
) -> None:
    root, _ = sample
    doc = json.loads((root / "crm" / START.isoformat() / "pipelines.json").read_text("utf-8"))
    assert len(doc["results"]) == 2
    for pipeline in doc["results"]:
        metadata = [s["metadata"] for s in pipeline["stages"]]
        assert {m["isClosed"] for m in metadata} == {"true", "false"}
        assert all(0.0 <= float(m["probability"]) <= 1.0 for m in metadata)
        won = [
            s
            for s in pipeline["stages"]
            if s["metadata"] == {"isClosed": "true", "probability": "1.0"}
        ]
        lost = [
            s
            for s in pipeline["stages"]
            if s["metadata"] == {"isClosed": "true", "probability": "0.0"}
        ]
        assert len(won) == len(lost) == 1
        assert not re.search(r"won|lost", won[0]["label"] + lost[0]["label"], re.IGNORECASE)
    stages = stage_metadata(root)
    assert {d["properties"]["dealstage"] for _, d in records(root, "crm", "deals")} <= stages.keys()


# --- incremental extracts ---------------------------------------------------------------------


def test_updated_records_are_re_exported_on_later_days(
    sample: tuple[Path, GenerationSummary],
) -> None:
    root, _ = sample
    stages = stage_metadata(root)
    versions: dict[str, list[tuple[date, dict]]] = {}
    for day, deal in records(root, "crm", "deals"):
        versions.setdefault(deal["id"], []).append((day, deal))
    re_exported = {i: v for i, v in versions.items() if len({d for d, _ in v}) >= 2}
    assert re_exported
    closed_later = 0
    for history in re_exported.values():
        days = [d for d, _ in history]
        updated = [datetime.fromisoformat(r["updatedAt"]) for _, r in history]
        assert days == sorted(days) and len(set(days)) == len(days)  # once per extract day
        assert updated == sorted(updated) and len(set(updated)) == len(updated)
        first_stage = stages[history[0][1]["properties"]["dealstage"]]
        last_stage = stages[history[-1][1]["properties"]["dealstage"]]
        closed_later += first_stage["isClosed"] == "false" and last_stage["isClosed"] == "true"
    assert closed_later > 0

    for key, field in UPDATED_FIELD.items():  # after the full load: changed that very day
        source, obj = key.split("/")
        for day, record in records(root, source, obj):
            if day > START:
                assert paris_date(record[field]) == day, (key, record["id"])

    for key, progressed in (("crm/contacts", "lifecyclestage"), ("support/tickets", "status")):
        source, obj = key.split("/")
        values: dict[object, set[str]] = {}
        for _, record in records(root, source, obj):
            value = record["properties"][progressed] if source == "crm" else record[progressed]
            values.setdefault(record["id"], set()).add(value)
        assert any(len(v) > 1 for v in values.values()), key


def test_the_data_exercises_the_kpis(sample: tuple[Path, GenerationSummary]) -> None:
    root, _ = sample
    stages = stage_metadata(root)
    latest: dict[str, dict] = {}
    for _, deal in records(root, "crm", "deals"):
        latest[deal["id"]] = deal
    in_period = [
        d
        for d in latest.values()
        if stages[d["properties"]["dealstage"]]["isClosed"] == "true"
        and START <= paris_date(d["properties"]["closedate"]) <= END
    ]
    outcomes = {stages[d["properties"]["dealstage"]]["probability"] for d in in_period}
    assert outcomes == {"1.0", "0.0"}  # a win rate strictly between 0 and 1
    metrics = [m for _, m in records(root, "support", "ticket_metrics")]
    assert any(m["reopens"] > 0 for m in metrics)
    assert any(m["replies"] == 1 and m["solved_at"] for m in metrics)
    surveys = [f["properties"] for _, f in records(root, "crm", "feedback_submissions")]
    nps = [int(p["hs_response_value"]) for p in surveys if p["hs_survey_type"] == "NPS"]
    assert set(nps) <= set(range(11)) and len(set(nps)) >= 3
    event_types = {e["type"] for _, e in records(root, "crm", "email_events")}
    assert {"SENT", "DELIVERED", "OPEN", "CLICK"} <= event_types
    per_day = {
        d: len(path.read_text().splitlines())
        for d, path in (
            (date.fromisoformat(p.parent.name), p) for p in root.glob("web/*/events.jsonl")
        )
    }
    weekdays = [n for d, n in per_day.items() if d.weekday() < 5]
    weekends = [n for d, n in per_day.items() if d.weekday() >= 5]
    assert sum(weekends) / len(weekends) < 0.8 * sum(weekdays) / len(weekdays)


# --- GA4 shape --------------------------------------------------------------------------------


def test_ga4_events(sample: tuple[Path, GenerationSummary]) -> None:
    root, _ = sample
    contact_ids = {c["id"] for _, c in records(root, "crm", "contacts")}
    sessions: dict[tuple[str, int], set[str]] = {}
    user_ids, names = set(), set()
    for day, event in records(root, "web", "events"):
        params = {p["key"]: p["value"] for p in event["event_params"]}
        session_id = params["ga_session_id"]["int_value"]
        assert isinstance(session_id, int)
        assert isinstance(params["ga_session_number"]["int_value"], int)
        assert params["session_engaged"]["string_value"] in ("0", "1")
        assert isinstance(event["event_timestamp"], int)
        moment = datetime.fromtimestamp(event["event_timestamp"] / 1e6, UTC)
        assert event["event_date"] == moment.astimezone(PARIS).strftime("%Y%m%d")
        assert event["event_date"] == day.strftime("%Y%m%d")  # the file of its own day
        sessions.setdefault((event["user_pseudo_id"], session_id), set()).add(event["event_name"])
        names.add(event["event_name"])
        if event["user_id"] is not None:
            user_ids.add(event["user_id"])
        if event["event_name"] == "purchase":
            assert event["ecommerce"]["transaction_id"]
            assert event["ecommerce"]["purchase_revenue"] > 0
        if event["event_name"] == "session_start":
            assert {"page_location", "source", "medium", "campaign"} <= params.keys()
    assert {
        "session_start",
        "first_visit",
        "page_view",
        "user_engagement",
        "scroll",
        "generate_lead",
        "sign_up",
        "purchase",
    } <= names
    assert user_ids and user_ids <= contact_ids
    assert sum(1 for events in sessions.values() if len(events) > 2) > len(sessions) / 3
    users: dict[str, int] = {}
    for user, _ in sessions:
        users[user] = users.get(user, 0) + 1
    assert any(n > 1 for n in users.values())  # returning visitors


def test_sessions_crossing_midnight_are_split_by_event_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every session starts between 23:00 and midnight, so that many cross midnight.
    monkeypatch.setattr(web, "WEB_HOURS", [0.0] * 23 + [1.0])
    busy = SampleScale(**{**TINY.__dict__, "web_events_per_day": 3000})
    generate(tmp_path, start=START, end=START + timedelta(days=1), scale=busy)
    second_midnight = datetime.combine(START + timedelta(days=2), datetime.min.time(), PARIS)
    bad_date, bad_file, split, total = (
        duckdb.connect()
        .execute(
            """
        select
            count(*) filter (where strftime(timezone('Europe/Paris',
                make_timestamptz(event_timestamp)), '%Y%m%d') <> event_date),
            count(*) filter (where event_date
                <> replace(regexp_extract(filename, '\\d{4}-\\d\\d-\\d\\d'), '-', '')),
            count(*) filter (where event_date = ? and list_filter(event_params,
                lambda p: p.key = 'ga_session_id')[1].value.int_value < ?),
            count(*)
        from read_json(?, filename = true, format = 'newline_delimited')
        """,
            [
                (START + timedelta(days=1)).strftime("%Y%m%d"),
                int(second_midnight.timestamp()) - 86_400,
                str(tmp_path / "web" / "*" / "events.jsonl"),
            ],
        )
        .fetchone()
    )
    assert total > 0 and bad_date == 0 and bad_file == 0
    assert split > 0  # the tail of a session started before midnight, in the next day's file
    # after the last extract day, the tails are not exported (not yet in any GA4 table)
    last = [
        json.loads(line)
        for line in (tmp_path / "web" / str(START + timedelta(days=1)) / "events.jsonl").open()
    ]
    assert all(e["event_timestamp"] < second_midnight.timestamp() * 1e6 for e in last)


# --- faults -----------------------------------------------------------------------------------

DAY = START.isoformat()
CHANGED_BY_FAULT = {
    "malformed_json_line": {f"crm/{DAY}/deals.jsonl"},
    "bad_amount": {f"crm/{DAY}/deals.jsonl"},
    "bad_date": {f"support/{DAY}/tickets.jsonl"},
    "missing_id": {f"crm/{DAY}/contacts.jsonl"},
    "unknown_enum": {f"support/{DAY}/tickets.jsonl"},
    "changed_type": {f"web/{DAY}/events.jsonl"},
    "truncated_gzip": {f"support/{DAY}/tickets_extra.jsonl.gz"},
    "wrong_format": {f"crm/{DAY}/calls.jsonl"},
    "empty_file": {f"support/{DAY}/groups.jsonl.gz"},
    "latin1_csv": {f"spend/{DAY}/marketing_spend.csv"},
    "bom_csv": {f"spend/{DAY}/fx_rates.csv"},
    "parquet_events": {f"web/{DAY}/events.jsonl", f"web/{DAY}/events.parquet"},
    "gzip_events": {f"web/{DAY}/events.jsonl", f"web/{DAY}/events.jsonl.gz"},
    "unknown_field": {f"crm/{DAY}/contacts.jsonl"},
}


def json_lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def test_fault_catalogue_is_complete() -> None:
    assert set(CHANGED_BY_FAULT) == FAULTS


def test_unknown_fault_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        generate(tmp_path, start=START, end=START, scale=TINY, faults=frozenset({"gremlins"}))


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_changes_only_its_file(
    fault: str, clean_tiny: dict[str, bytes], tmp_path: Path
) -> None:
    generate(
        tmp_path, start=START, end=START + timedelta(days=1), scale=TINY, faults=frozenset({fault})
    )
    faulty = tree(tmp_path)
    changed = {k for k in clean_tiny.keys() | faulty.keys() if clean_tiny.get(k) != faulty.get(k)}
    assert changed == CHANGED_BY_FAULT[fault]
    check_fault(fault, clean_tiny, faulty, tmp_path)


def check_fault(fault: str, clean: dict[str, bytes], faulty: dict[str, bytes], root: Path) -> None:
    """The bad input is really there, and it is the only difference."""
    (path,) = sorted(CHANGED_BY_FAULT[fault])[-1:]
    before, after = clean.get(path, b""), faulty.get(path, b"")
    if fault == "malformed_json_line":
        lines = after.decode().splitlines()
        bad = [line for line in lines if not _parses(line)]
        assert len(bad) == 1 and len(lines) == len(before.decode().splitlines()) + 1
    elif fault == "bad_amount":
        clean_deals = {d["id"]: d for d in json_lines(before)}
        (bad,) = [d for d in json_lines(after) if d["properties"]["amount"] == "abc"]
        assert bad["id"] in clean_deals
        assert bad["updatedAt"] > clean_deals[bad["id"]]["updatedAt"]
    elif fault in ("bad_date", "unknown_enum"):
        field, value = (
            ("created_at", "not-a-date") if fault == "bad_date" else ("status", "escalated")
        )
        (bad,) = [t for t in json_lines(after) if t[field] == value]
        assert bad["id"] not in {t["id"] for t in json_lines(before)}
    elif fault == "missing_id":
        assert sum("id" not in c for c in json_lines(after)) == 1
    elif fault == "changed_type":
        assert [
            e["event_timestamp"]
            for e in json_lines(after)
            if not isinstance(e["event_timestamp"], int)
        ] == ["abc"]
    elif fault == "truncated_gzip":
        with pytest.raises(EOFError):
            gzip.decompress(after)
    elif fault == "wrong_format":
        text = after.decode()
        assert not _parses(text.splitlines()[0])
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["id"] for r in rows] == [c["id"] for c in json_lines(before)]
    elif fault == "empty_file":
        assert path not in clean and path in faulty and after == b""
    elif fault == "latin1_csv":
        with pytest.raises(UnicodeDecodeError):
            after.decode("utf-8")
        assert "Été" in after.decode("latin-1")
        assert after.decode("latin-1") == before.decode("utf-8")
    elif fault == "bom_csv":
        assert after == b"\xef\xbb\xbf" + before
    elif fault == "parquet_events":
        events = json_lines(clean[f"web/{DAY}/events.jsonl"])
        parquet = root / "web" / DAY / "events.parquet"
        con = duckdb.connect()
        count, params = con.execute(
            "select count(*), max(len(event_params)) from read_parquet(?)", [str(parquet)]
        ).fetchone()
        assert count == len(events) and params > 0
        columns = [
            r[0]
            for r in con.execute(
                "select name from parquet_schema(?) where name in (select unnest(?))",
                [str(parquet), list(events[0])],
            ).fetchall()
        ]
        assert set(columns) == set(events[0])
        session_ids = con.execute(
            "select count(*) from read_parquet(?), unnest(event_params) as p(param) "
            "where param.key = 'ga_session_id' and param.value.int_value is not null",
            [str(parquet)],
        ).fetchone()[0]
        assert session_ids == count
    elif fault == "gzip_events":
        assert gzip.decompress(after) == clean[f"web/{DAY}/events.jsonl"]
    elif fault == "unknown_field":
        extended = [c for c in json_lines(after) if "boussole_lead_score" in c["properties"]]
        assert extended
        for contact in extended:
            del contact["properties"]["boussole_lead_score"], contact["properties"]["hs_persona"]
        clean_ids = {c["id"]: c for c in json_lines(before)}
        assert all(clean_ids[c["id"]] == c for c in extended)


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def test_changed_type_in_parquet_makes_a_string_column(tmp_path: Path) -> None:
    generate(
        tmp_path,
        start=START,
        end=START,
        scale=TINY,
        faults=frozenset({"parquet_events", "changed_type"}),
    )
    parquet = str(tmp_path / "web" / DAY / "events.parquet")
    con = duckdb.connect()
    (column_type,) = con.execute(
        "select type from parquet_schema(?) where name = 'event_timestamp'", [parquet]
    ).fetchone()
    assert column_type == "BYTE_ARRAY"
    (bad,) = con.execute(
        "select count(*) from read_parquet(?) where event_timestamp = 'abc'", [parquet]
    ).fetchone()
    assert bad == 1


def test_all_faults_together(clean_tiny: dict[str, bytes], tmp_path: Path) -> None:
    """With both event formats, the day's events are split between Parquet and gzip."""
    generate(tmp_path, start=START, end=START + timedelta(days=1), scale=TINY, faults=FAULTS)
    faulty = tree(tmp_path)
    changed = {k for k in clean_tiny.keys() | faulty.keys() if clean_tiny.get(k) != faulty.get(k)}
    assert changed == set().union(*CHANGED_BY_FAULT.values())
    events = json_lines(clean_tiny[f"web/{DAY}/events.jsonl"])
    gzipped = json_lines(gzip.decompress(faulty[f"web/{DAY}/events.jsonl.gz"]))
    (in_parquet,) = (
        duckdb.connect()
        .execute(
            "select count(*) from read_parquet(?)", [str(tmp_path / "web" / DAY / "events.parquet")]
        )
        .fetchone()
    )
    assert in_parquet + len(gzipped) == len(events) + 1  # + the changed_type event

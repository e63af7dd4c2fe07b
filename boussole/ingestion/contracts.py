"""The landing contract: which objects each source delivers and how their files are named.

Mirrors shared/extract-contracts.md. Each object lands as
<landing>/<source>/<extract_date>/<object>.<ext> and is loaded into the raw table
raw_<source>.<object>, one row per record, the record kept whole as JSON so that unknown
vendor fields survive (staging models pick the fields they need).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

SOURCES = ("crm", "web", "support", "spend")

# Longest suffixes first: "events.jsonl.gz" must match ".jsonl.gz", not ".gz".
FORMAT_BY_SUFFIX = {
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json_document",
    ".csv": "csv",
    ".parquet": "parquet",
}

_EXTRACT_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# What a field must hold for its record to be loaded; a record that breaks a rule goes to
# quarantine with the field and the reason. Kinds: required (present, not null), integer,
# number, timestamp (ISO-8601 or epoch milliseconds), date (YYYY-MM-DD), yyyymmdd, month
# (YYYY-MM), enum (one of `allowed`), object, array.
@dataclass(frozen=True)
class FieldRule:
    path: str
    kind: str
    required: bool = False
    allowed: tuple[str, ...] = ()


def _id(path: str = "id", kind: str = "required") -> FieldRule:
    return FieldRule(path, kind, required=True)


@dataclass(frozen=True)
class LandingObject:
    source: str
    name: str
    description: str
    rules: tuple[FieldRule, ...] = ()
    # A JSON document delivers its records under this key ({"results": [...]}).
    records_key: str | None = None

    @property
    def raw_schema(self) -> str:
        return f"raw_{self.source}"

    @property
    def raw_table(self) -> str:
        return f"{self.raw_schema}.{self.name}"

    def matches(self, file_name: str) -> bool:
        """<object>.<ext>, or one part of a split export: <object>_<part>.<ext>
        (GA4's events_YYYYMMDD, pages of a paginated API export)."""
        suffix = file_suffix(file_name)
        if suffix is None:
            return False
        stem = file_name[: -len(suffix)]
        return (
            stem == self.name
            or re.fullmatch(rf"{re.escape(self.name)}_[A-Za-z0-9-]+", stem) is not None
        )


def file_suffix(file_name: str) -> str | None:
    lowered = file_name.lower()
    return next((s for s in FORMAT_BY_SUFFIX if lowered.endswith(s)), None)


HUBSPOT_LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
HUBSPOT_EMAIL_EVENT_TYPES = (
    "SENT",
    "DELIVERED",
    "OPEN",
    "CLICK",
    "BOUNCE",
    "DROPPED",
    "SPAMREPORT",
    "UNSUBSCRIBED",
)
ZENDESK_TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed", "deleted")
ZENDESK_PRIORITIES = ("low", "normal", "high", "urgent")
ZENDESK_SATISFACTION_SCORES = ("unoffered", "offered", "good", "bad")
_HUBSPOT_VERSION = (FieldRule("updatedAt", "timestamp"), FieldRule("properties", "object"))
_ENGAGEMENT = (_id(), FieldRule("properties.hs_timestamp", "timestamp"), *_HUBSPOT_VERSION)

LANDING_OBJECTS: tuple[LandingObject, ...] = (
    LandingObject(
        "crm",
        "contacts",
        "HubSpot contacts (CRM API v3), one version per update.",
        rules=(
            _id(),
            FieldRule("properties.createdate", "timestamp"),
            FieldRule("properties.lifecyclestage", "enum", allowed=HUBSPOT_LIFECYCLE_STAGES),
            *_HUBSPOT_VERSION,
        ),
    ),
    LandingObject(
        "crm",
        "companies",
        "HubSpot companies, one version per update.",
        rules=(_id(), FieldRule("properties.numberofemployees", "number"), *_HUBSPOT_VERSION),
    ),
    LandingObject(
        "crm",
        "deals",
        "HubSpot deals with stage, amount and associations.",
        rules=(
            _id(),
            FieldRule("properties.amount", "number"),
            FieldRule("properties.recurring_revenue_amount", "number"),
            FieldRule("properties.createdate", "timestamp"),
            FieldRule("properties.closedate", "timestamp"),
            FieldRule("properties.contract_end_date", "timestamp"),
            *_HUBSPOT_VERSION,
        ),
    ),
    LandingObject(
        "crm",
        "pipelines",
        "HubSpot deal pipelines and stage metadata.",
        rules=(_id(), FieldRule("stages", "array", required=True)),
        records_key="results",
    ),
    LandingObject(
        "crm",
        "owners",
        "HubSpot owners and their teams.",
        rules=(_id(), FieldRule("teams", "array")),
    ),
    LandingObject("crm", "calls", "HubSpot call engagements.", rules=_ENGAGEMENT),
    LandingObject("crm", "emails", "HubSpot email engagements.", rules=_ENGAGEMENT),
    LandingObject("crm", "meetings", "HubSpot meeting engagements.", rules=_ENGAGEMENT),
    LandingObject(
        "crm",
        "email_events",
        "HubSpot marketing email events.",
        rules=(
            _id(),
            FieldRule("type", "enum", required=True, allowed=HUBSPOT_EMAIL_EVENT_TYPES),
            FieldRule("created", "integer", required=True),
        ),
    ),
    LandingObject("crm", "email_campaigns", "HubSpot marketing email campaigns.", rules=(_id(),)),
    LandingObject(
        "crm",
        "feedback_submissions",
        "HubSpot survey answers (NPS, CSAT, CES).",
        rules=(
            _id(),
            FieldRule("properties.hs_survey_type", "enum", allowed=("NPS", "CSAT", "CES")),
            FieldRule("properties.hs_response_value", "number"),
            FieldRule("properties.hs_submission_timestamp", "timestamp"),
        ),
    ),
    LandingObject(
        "web",
        "events",
        "GA4 BigQuery export events, one per record.",
        rules=(
            FieldRule("event_timestamp", "integer", required=True),
            FieldRule("event_name", "required", required=True),
            FieldRule("user_pseudo_id", "required", required=True),
            FieldRule("event_date", "yyyymmdd"),
            FieldRule("event_params", "array"),
        ),
    ),
    LandingObject(
        "support",
        "tickets",
        "Zendesk tickets (incremental export).",
        rules=(
            _id(kind="integer"),
            FieldRule("created_at", "timestamp", required=True),
            FieldRule("updated_at", "timestamp"),
            FieldRule("status", "enum", required=True, allowed=ZENDESK_TICKET_STATUSES),
            FieldRule("priority", "enum", allowed=ZENDESK_PRIORITIES),
        ),
    ),
    LandingObject(
        "support",
        "ticket_metrics",
        "Zendesk ticket metrics (reply, resolution).",
        rules=(
            _id(kind="integer"),
            _id("ticket_id", kind="integer"),
            FieldRule("updated_at", "timestamp"),
            FieldRule("reply_time_in_minutes.calendar", "number"),
            FieldRule("full_resolution_time_in_minutes.calendar", "number"),
        ),
    ),
    LandingObject(
        "support",
        "ticket_comments",
        "Zendesk ticket comments (every reply).",
        rules=(
            _id(kind="integer"),
            _id("ticket_id", kind="integer"),
            FieldRule("created_at", "timestamp"),
        ),
    ),
    LandingObject(
        "support",
        "users",
        "Zendesk users (requesters and agents).",
        rules=(
            _id(kind="integer"),
            FieldRule("role", "enum", allowed=("end-user", "agent", "admin")),
        ),
    ),
    LandingObject("support", "groups", "Zendesk agent groups.", rules=(_id(kind="integer"),)),
    LandingObject(
        "support",
        "organizations",
        "Zendesk organisations and their domains.",
        rules=(_id(kind="integer"), FieldRule("domain_names", "array")),
    ),
    LandingObject(
        "support",
        "satisfaction_ratings",
        "Zendesk satisfaction ratings.",
        rules=(
            _id(kind="integer"),
            FieldRule("score", "enum", allowed=ZENDESK_SATISFACTION_SCORES),
            FieldRule("created_at", "timestamp"),
        ),
    ),
    LandingObject(
        "spend",
        "marketing_spend",
        "Advertising spend by day, channel and campaign.",
        rules=(
            FieldRule("date", "date", required=True),
            FieldRule("spend", "number", required=True),
        ),
    ),
    LandingObject(
        "spend",
        "sales_costs",
        "Sales team costs by month.",
        rules=(
            FieldRule("month", "month", required=True),
            FieldRule("cost", "number", required=True),
        ),
    ),
    LandingObject(
        "spend",
        "fx_rates",
        "Daily FX rates to the reporting currency.",
        rules=(
            FieldRule("date", "date", required=True),
            FieldRule("currency", "required", required=True),
            FieldRule("rate_to_reporting", "number", required=True),
        ),
    ),
)


def objects_of(source: str) -> tuple[LandingObject, ...]:
    return tuple(o for o in LANDING_OBJECTS if o.source == source)


@dataclass(frozen=True)
class LandedFile:
    path: Path
    landing_object: LandingObject
    extract_date: date

    @property
    def file_format(self) -> str:
        suffix = file_suffix(self.path.name)
        assert suffix is not None  # guaranteed by LandingObject.matches
        return FORMAT_BY_SUFFIX[suffix]


def extract_dates(landing_dir: Path) -> list[date]:
    """Every extract date that has a folder under any source, sorted."""
    found: set[date] = set()
    for source in SOURCES:
        source_dir = landing_dir / source
        if not source_dir.is_dir():
            continue
        for child in source_dir.iterdir():
            if child.is_dir() and _EXTRACT_DATE.fullmatch(child.name):
                found.add(date.fromisoformat(child.name))
    return sorted(found)


def landed_files(
    landing_dir: Path, source: str, extract_date: date
) -> tuple[list[LandedFile], list[Path]]:
    """The files of one source and extract date: those of a known object, and the others."""
    day_dir = landing_dir / source / extract_date.isoformat()
    if not day_dir.is_dir():
        return [], []
    known: list[LandedFile] = []
    unknown: list[Path] = []
    for path in sorted(p for p in day_dir.iterdir() if p.is_file()):
        # The longest name wins: email_events_2.jsonl is email_events, not emails.
        candidates = [o for o in objects_of(source) if o.matches(path.name)]
        landing_object = max(candidates, key=lambda o: len(o.name), default=None)
        if landing_object is None:
            unknown.append(path)
        else:
            known.append(LandedFile(path, landing_object, extract_date))
    return known, unknown

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


@dataclass(frozen=True)
class LandingObject:
    source: str
    name: str
    description: str
    # A JSON document delivers its records under this key ({"results": [...]}).
    records_key: str | None = None
    # GA4 names its daily export tables events_YYYYMMDD; accept the same for files.
    dated_suffix: bool = False

    @property
    def raw_schema(self) -> str:
        return f"raw_{self.source}"

    @property
    def raw_table(self) -> str:
        return f"{self.raw_schema}.{self.name}"

    def matches(self, file_name: str) -> bool:
        suffix = file_suffix(file_name)
        if suffix is None:
            return False
        stem = file_name[: -len(suffix)]
        if stem == self.name:
            return True
        return (
            self.dated_suffix and re.fullmatch(rf"{re.escape(self.name)}_\d{{8}}", stem) is not None
        )


def file_suffix(file_name: str) -> str | None:
    lowered = file_name.lower()
    return next((s for s in FORMAT_BY_SUFFIX if lowered.endswith(s)), None)


LANDING_OBJECTS: tuple[LandingObject, ...] = (
    LandingObject("crm", "contacts", "HubSpot contacts (CRM API v3), one version per update."),
    LandingObject("crm", "companies", "HubSpot companies, one version per update."),
    LandingObject("crm", "deals", "HubSpot deals with stage, amount and associations."),
    LandingObject(
        "crm", "pipelines", "HubSpot deal pipelines and stage metadata.", records_key="results"
    ),
    LandingObject("crm", "owners", "HubSpot owners and their teams."),
    LandingObject("crm", "calls", "HubSpot call engagements."),
    LandingObject("crm", "emails", "HubSpot email engagements."),
    LandingObject("crm", "meetings", "HubSpot meeting engagements."),
    LandingObject("crm", "email_events", "HubSpot marketing email events."),
    LandingObject("crm", "email_campaigns", "HubSpot marketing email campaigns."),
    LandingObject("crm", "feedback_submissions", "HubSpot survey answers (NPS, CSAT, CES)."),
    LandingObject(
        "web", "events", "GA4 BigQuery export events, one per record.", dated_suffix=True
    ),
    LandingObject("support", "tickets", "Zendesk tickets (incremental export)."),
    LandingObject("support", "ticket_metrics", "Zendesk ticket metrics (reply, resolution)."),
    LandingObject("support", "ticket_comments", "Zendesk ticket comments (every reply)."),
    LandingObject("support", "users", "Zendesk users (requesters and agents)."),
    LandingObject("support", "groups", "Zendesk agent groups."),
    LandingObject("support", "organizations", "Zendesk organisations and their domains."),
    LandingObject("support", "satisfaction_ratings", "Zendesk satisfaction ratings."),
    LandingObject("spend", "marketing_spend", "Advertising spend by day, channel and campaign."),
    LandingObject("spend", "sales_costs", "Sales team costs by month."),
    LandingObject("spend", "fx_rates", "Daily FX rates to the reporting currency."),
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
        landing_object = next((o for o in objects_of(source) if o.matches(path.name)), None)
        if landing_object is None:
            unknown.append(path)
        else:
            known.append(LandedFile(path, landing_object, extract_date))
    return known, unknown

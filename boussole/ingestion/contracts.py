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

# Written at the top of a landing folder by `boussole generate`: the files it wrote there, which
# may be pseudonymised with the public development key (boussole/sample_data/marker.py).
SAMPLE_MARKER = ".boussole-sample.json"


# What a field must hold for its record to be loaded; a record that breaks a rule goes to
# quarantine with the field and the reason. The rules are the one gate between the landing
# folder and raw: a value that passes them must stage cleanly (cast to its staging type) and
# be plausible, or a record loaded once would fail every later run.
# Kinds: required (present, not null), integer, number, timestamp (ISO-8601 or epoch
# milliseconds), epoch_us (epoch microseconds, GA4), date (YYYY-MM-DD), yyyymmdd, month
# (YYYY-MM), currency (three letters), enum (one of `allowed`), object, array.
# A path with `[*]` checks every element of an array (pipeline stages, GA4 event_params).
@dataclass(frozen=True)
class FieldRule:
    path: str
    kind: str
    required: bool = False
    allowed: tuple[str, ...] = ()
    # The staging type a number or an integer is cast to: "integer", "bigint" (the default
    # for integers) or "decimal(P, S)"; a value that does not fit is refused.
    fits: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # Strictly above zero (an FX rate of 0 would leave converted amounts null).
    positive: bool = False
    # A date that may lie years after its extract (expected close, contract end, a planned
    # meeting); any other date is refused a few days past its extract date.
    planned: bool = False
    # Another dated field of the record this one may not precede (a deal closes after it is
    # created: its cycle is never negative).
    not_before: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"{self.path}: unknown rule kind {self.kind!r}")
        if (self.kind == "enum") != bool(self.allowed):
            raise ValueError(f"{self.path}: an enum rule, and only one, lists allowed values")
        numeric = self.kind in ("integer", "number")
        if not numeric and (self.fits or self.positive or {self.minimum, self.maximum} - {None}):
            raise ValueError(f"{self.path}: bounds apply to numbers and integers only")
        if (self.planned or self.not_before) and not self.is_dated:
            raise ValueError(f"{self.path}: only a dated kind can be planned or ordered")
        if "[*]" in self.path and not re.fullmatch(r"\w+\[\*\]\.[\w.]+", self.path):
            raise ValueError(f"{self.path}: an element rule reads <array>[*].<field>")
        if "[*]" in self.path and self.kind in ("object", "array"):
            raise ValueError(f"{self.path}: an element rule checks a scalar field")

    @property
    def is_dated(self) -> bool:
        return self.kind in DATED_KINDS


DATED_KINDS = frozenset({"timestamp", "epoch_us", "date", "yyyymmdd", "month"})
RULE_KINDS = DATED_KINDS | {
    "required",
    "integer",
    "number",
    "currency",
    "enum",
    "object",
    "array",
}


@dataclass(frozen=True)
class PlausibleDates:
    """The window a dated value must fall in: not before `since`, and not after its extract
    date by more than `days_ahead` (time zones, an extract taken at the end of a day), or by
    more than `planned_years` for a planned date. A timestamp in the wrong unit (seconds for
    milliseconds) lands in 1970 or far ahead, and is refused rather than loaded."""

    since: date = date(2000, 1, 1)
    days_ahead: int = 2
    planned_years: int = 10


DEFAULT_PLAUSIBLE_DATES = PlausibleDates()


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
    # (id, update time) of a versioned record: two versions with the same id and update time
    # but other content are a conflict, never a silent pick (the later one is quarantined).
    version: tuple[str, str] | None = None
    # Fields that hold personal data (names, emails, phone numbers, free text a person wrote):
    # pseudonymised (dbt_project/macros/pii.sql) or left out by staging, masked in
    # ingestion.quarantine.
    personal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        dated = {rule.path for rule in self.rules if rule.is_dated and "[*]" not in rule.path}
        for rule in self.rules:
            if rule.not_before and rule.not_before not in dated:
                raise ValueError(f"{self.name}.{rule.path}: {rule.not_before} has no dated rule")
            # A failed rule's reason quotes the value: never a personal one.
            if rule.path in self.personal and rule.kind != "required":
                raise ValueError(f"{self.name}.{rule.path}: a personal field is only required")

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


def _timestamp(path: str, required: bool = False, planned: bool = False) -> FieldRule:
    return FieldRule(path, "timestamp", required=required, planned=planned)


def _money(path: str, required: bool = False) -> FieldRule:
    return FieldRule(path, "number", required=required, fits="decimal(18, 2)", minimum=0)


def _zendesk_ids(*paths: str) -> tuple[FieldRule, ...]:
    return tuple(FieldRule(path, "integer") for path in paths)


def _count(path: str) -> FieldRule:
    return FieldRule(path, "integer", fits="integer", minimum=0)


def _minutes(*metrics: str) -> tuple[FieldRule, ...]:
    """Zendesk durations in calendar and business minutes: never negative."""
    return tuple(
        FieldRule(f"{metric}.{clock}", "number", minimum=0)
        for metric in metrics
        for clock in ("calendar", "business")
    )


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
_HUBSPOT_VERSION = (
    _timestamp("createdAt"),
    _timestamp("updatedAt"),
    FieldRule("properties", "object"),
)
_ZENDESK_TIMES = (_timestamp("created_at"), _timestamp("updated_at"))


def _engagement(*planned_times: str) -> tuple[FieldRule, ...]:
    """Calls, emails and meetings: a meeting's times may be planned ahead of the extract."""
    return (
        _id(),
        _timestamp("properties.hs_timestamp", required=True, planned=bool(planned_times)),
        *(_timestamp(f"properties.{name}", planned=True) for name in planned_times),
        *_HUBSPOT_VERSION,
    )


LANDING_OBJECTS: tuple[LandingObject, ...] = (
    LandingObject(
        "crm",
        "contacts",
        "HubSpot contacts (CRM API v3), one version per update.",
        version=("id", "updatedAt"),
        rules=(
            _id(),
            _timestamp("properties.createdate", required=True),
            *(
                _timestamp(f"properties.hs_lifecyclestage_{stage}_date")
                for stage in ("lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")
            ),
            FieldRule("properties.lifecyclestage", "enum", allowed=HUBSPOT_LIFECYCLE_STAGES),
            *_HUBSPOT_VERSION,
        ),
        personal=tuple(
            f"properties.{name}"
            for name in ("email", "firstname", "lastname", "phone", "mobilephone")
        ),
    ),
    LandingObject(
        "crm",
        "companies",
        "HubSpot companies, one version per update.",
        version=("id", "updatedAt"),
        rules=(
            _id(),
            _count("properties.numberofemployees"),
            _timestamp("properties.createdate"),
            *_HUBSPOT_VERSION,
        ),
    ),
    LandingObject(
        "crm",
        "deals",
        "HubSpot deals with stage, amount and associations.",
        version=("id", "updatedAt"),
        rules=(
            _id(),
            FieldRule("properties.dealstage", "required", required=True),
            _money("properties.amount"),
            _money("properties.recurring_revenue_amount"),
            FieldRule("properties.deal_currency_code", "currency"),
            _timestamp("properties.createdate"),
            FieldRule(
                "properties.closedate",
                "timestamp",
                planned=True,
                not_before="properties.createdate",
            ),
            FieldRule("properties.contract_end_date", "date", planned=True),
            *_HUBSPOT_VERSION,
        ),
    ),
    LandingObject(
        "crm",
        "pipelines",
        "HubSpot deal pipelines and stage metadata.",
        rules=(
            _id(),
            FieldRule("stages", "array", required=True),
            _id("stages[*].id"),
            FieldRule("stages[*].displayOrder", "integer", fits="integer"),
            FieldRule(
                "stages[*].metadata.probability",
                "number",
                fits="decimal(5, 4)",
                minimum=0,
                maximum=1,
            ),
        ),
        records_key="results",
    ),
    LandingObject(
        "crm",
        "owners",
        "HubSpot owners and their teams.",
        rules=(_id(), FieldRule("teams", "array"), _id("teams[*].id"), *_HUBSPOT_VERSION[:2]),
        personal=("email", "firstName", "lastName"),
    ),
    LandingObject(
        "crm",
        "calls",
        "HubSpot call engagements.",
        version=("id", "updatedAt"),
        rules=(*_engagement(), FieldRule("properties.hs_call_duration", "integer", minimum=0)),
        personal=("properties.hs_call_title", "properties.hs_call_body"),
    ),
    LandingObject(
        "crm",
        "emails",
        "HubSpot email engagements.",
        version=("id", "updatedAt"),
        rules=_engagement(),
        personal=tuple(
            f"properties.hs_email_{name}" for name in ("subject", "text", "html", "to_email")
        ),
    ),
    LandingObject(
        "crm",
        "meetings",
        "HubSpot meeting engagements.",
        version=("id", "updatedAt"),
        rules=_engagement("hs_meeting_start_time", "hs_meeting_end_time"),
        personal=("properties.hs_meeting_title", "properties.hs_meeting_body"),
    ),
    LandingObject(
        "crm",
        "email_events",
        "HubSpot marketing email events.",
        rules=(
            _id(),
            FieldRule("type", "enum", required=True, allowed=HUBSPOT_EMAIL_EVENT_TYPES),
            _timestamp("created", required=True),
        ),
        personal=("recipient",),
    ),
    LandingObject("crm", "email_campaigns", "HubSpot marketing email campaigns.", rules=(_id(),)),
    LandingObject(
        "crm",
        "feedback_submissions",
        "HubSpot survey answers (NPS, CSAT, CES).",
        version=("id", "updatedAt"),
        rules=(
            _id(),
            FieldRule(
                "properties.hs_survey_type", "enum", required=True, allowed=("NPS", "CSAT", "CES")
            ),
            # NPS answers 0 to 10, CSAT and CES answers fewer points: 10 bounds them all.
            FieldRule(
                "properties.hs_response_value",
                "integer",
                required=True,
                fits="integer",
                minimum=0,
                maximum=10,
            ),
            _timestamp("properties.hs_submission_timestamp"),
            *_HUBSPOT_VERSION[:2],
        ),
        personal=("properties.hs_content",),
    ),
    LandingObject(
        "web",
        "events",
        "GA4 BigQuery export events, one per record.",
        rules=(
            FieldRule("event_timestamp", "epoch_us", required=True),
            FieldRule("event_name", "required", required=True),
            FieldRule("user_pseudo_id", "required", required=True),
            FieldRule("event_date", "yyyymmdd"),
            FieldRule("user_first_touch_timestamp", "epoch_us"),
            FieldRule("ecommerce.purchase_revenue", "number", minimum=0),
            FieldRule("event_params", "array"),
            # Session ids and numbers, engagement times: integers (staging would round 6.4
            # to session 6), never negative. Float and double values are only read as text.
            FieldRule("event_params[*].value.int_value", "integer", minimum=0),
        ),
    ),
    LandingObject(
        "support",
        "tickets",
        "Zendesk tickets (incremental export).",
        version=("id", "updated_at"),
        rules=(
            _id(kind="integer"),
            *_zendesk_ids(
                "requester_id",
                "assignee_id",
                "group_id",
                "organization_id",
                "satisfaction_rating.id",
            ),
            _timestamp("created_at", required=True),
            _timestamp("updated_at"),
            FieldRule("status", "enum", required=True, allowed=ZENDESK_TICKET_STATUSES),
            FieldRule("priority", "enum", allowed=ZENDESK_PRIORITIES),
        ),
        personal=("subject", "description", "satisfaction_rating.comment"),
    ),
    LandingObject(
        "support",
        "ticket_metrics",
        "Zendesk ticket metrics (reply, resolution).",
        version=("id", "updated_at"),
        rules=(
            _id(kind="integer"),
            _id("ticket_id", kind="integer"),
            *_ZENDESK_TIMES,
            _timestamp("solved_at"),
            _count("replies"),
            _count("reopens"),
            *_minutes(
                "reply_time_in_minutes",
                "first_resolution_time_in_minutes",
                "full_resolution_time_in_minutes",
            ),
        ),
    ),
    LandingObject(
        "support",
        "ticket_comments",
        "Zendesk ticket comments (every reply).",
        rules=(
            _id(kind="integer"),
            _id("ticket_id", kind="integer"),
            *_zendesk_ids("author_id"),
            _timestamp("created_at"),
        ),
        personal=("body", "html_body", "plain_body"),
    ),
    LandingObject(
        "support",
        "users",
        "Zendesk users (requesters and agents).",
        version=("id", "updated_at"),
        rules=(
            _id(kind="integer"),
            *_zendesk_ids("organization_id"),
            FieldRule("role", "enum", allowed=("end-user", "agent", "admin")),
            *_ZENDESK_TIMES,
        ),
        personal=("name", "email", "phone"),
    ),
    LandingObject(
        "support",
        "groups",
        "Zendesk agent groups.",
        version=("id", "updated_at"),
        rules=(_id(kind="integer"), *_ZENDESK_TIMES),
    ),
    LandingObject(
        "support",
        "organizations",
        "Zendesk organisations and their domains.",
        version=("id", "updated_at"),
        rules=(_id(kind="integer"), FieldRule("domain_names", "array"), *_ZENDESK_TIMES),
    ),
    LandingObject(
        "support",
        "satisfaction_ratings",
        "Zendesk satisfaction ratings.",
        version=("id", "updated_at"),
        rules=(
            _id(kind="integer"),
            _id("ticket_id", kind="integer"),
            *_zendesk_ids("requester_id", "assignee_id", "group_id"),
            FieldRule("score", "enum", required=True, allowed=ZENDESK_SATISFACTION_SCORES),
            *_ZENDESK_TIMES,
        ),
        personal=("comment",),
    ),
    LandingObject(
        "spend",
        "marketing_spend",
        "Advertising spend by day, channel and campaign.",
        rules=(
            FieldRule("date", "date", required=True),
            FieldRule("channel", "required", required=True),
            _money("spend", required=True),
            FieldRule("currency", "currency", required=True),
        ),
    ),
    LandingObject(
        "spend",
        "sales_costs",
        "Sales team costs by month.",
        rules=(
            FieldRule("month", "month", required=True),
            FieldRule("team", "required", required=True),
            _money("cost", required=True),
            FieldRule("currency", "currency", required=True),
        ),
    ),
    LandingObject(
        "spend",
        "fx_rates",
        "Daily FX rates to the reporting currency.",
        rules=(
            FieldRule("date", "date", required=True),
            FieldRule("currency", "currency", required=True),
            FieldRule(
                "rate_to_reporting", "number", required=True, fits="decimal(18, 8)", positive=True
            ),
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


def _extract_date(name: str) -> date | None:
    if not _EXTRACT_DATE.fullmatch(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:  # 2026-02-30
        return None


def _leaves(path: Path, landing_dir: Path) -> bool:
    """A symbolic link whose target lies outside the landing folder: never followed."""
    return path.is_symlink() and not path.resolve().is_relative_to(landing_dir.resolve())


LINK_LEAVES = "a symbolic link that leaves the landing folder"


def _date_folders(landing_dir: Path, source: str) -> list[tuple[Path, date]]:
    source_dir = landing_dir / source
    if not source_dir.is_dir() or _leaves(source_dir, landing_dir):
        return []
    return sorted(
        (child, day)
        for child in source_dir.iterdir()
        if child.is_dir()
        and not _leaves(child, landing_dir)
        and (day := _extract_date(child.name)) is not None
    )


def extract_dates(landing_dir: Path) -> list[date]:
    """Every extract date that has a folder under any source, sorted."""
    return sorted({day for source in SOURCES for _, day in _date_folders(landing_dir, source)})


def _why_not_read(path: Path, source: str, landing_dir: Path) -> str | None:
    """Why an entry of an extract date folder is not a file to load, or None if it is one."""
    if _leaves(path, landing_dir):
        return LINK_LEAVES
    if path.is_dir():
        return "a folder where files are expected"
    if not path.is_file():
        return "not a regular file"
    if file_suffix(path.name) is None:
        return "not a file type of the contract (" + ", ".join(FORMAT_BY_SUFFIX) + ")"
    if not any(o.matches(path.name) for o in objects_of(source)):
        names = ", ".join(o.name for o in objects_of(source))
        return f"unknown object: the {source} objects are {names}"
    return None


def landed_files(
    landing_dir: Path, source: str, extract_date: date
) -> tuple[list[LandedFile], list[Path]]:
    """The files of one source and extract date: those of a known object, and the others."""
    day_dir = landing_dir / source / extract_date.isoformat()
    if not day_dir.is_dir() or any(_leaves(d, landing_dir) for d in (day_dir.parent, day_dir)):
        return [], []
    known: list[LandedFile] = []
    unknown: list[Path] = []
    for path in sorted(day_dir.iterdir()):
        if _why_not_read(path, source, landing_dir):
            unknown.append(path)
            continue
        # The longest name wins: email_events_2.jsonl is email_events, not emails.
        candidates = [o for o in objects_of(source) if o.matches(path.name)]
        known.append(LandedFile(path, max(candidates, key=lambda o: len(o.name)), extract_date))
    return known, unknown


@dataclass(frozen=True)
class IgnoredEntry:
    """An entry of the landing folder that the contract does not load, and why."""

    relative_path: str
    source: str | None  # None at the top of the landing folder
    extract_date: date | None
    reason: str


def survey_landing(landing_dir: Path) -> list[IgnoredEntry]:
    """Every entry under the landing folder that is not loaded, with the reason: nothing is
    left out without a word."""
    ignored: list[IgnoredEntry] = []

    def ignore(path: Path, source: str | None, day: date | None, reason: str) -> None:
        relative = path.relative_to(landing_dir).as_posix()
        ignored.append(IgnoredEntry(relative, source, day, reason))

    if not landing_dir.is_dir():
        return ignored
    for top in sorted(landing_dir.iterdir()):
        if top.name == SAMPLE_MARKER and not top.is_symlink():
            continue
        if _leaves(top, landing_dir):
            ignore(top, None, None, LINK_LEAVES)
        elif top.name not in SOURCES or not top.is_dir():
            ignore(top, None, None, f"not a source folder: the sources are {', '.join(SOURCES)}")
    for source in SOURCES:
        source_dir = landing_dir / source
        if not source_dir.is_dir() or _leaves(source_dir, landing_dir):
            continue
        for child in sorted(source_dir.iterdir()):
            if _leaves(child, landing_dir):
                ignore(child, source, None, LINK_LEAVES)
            elif not child.is_dir() or _extract_date(child.name) is None:
                ignore(child, source, None, "not an extract date folder (YYYY-MM-DD, a real date)")
        for day_dir, day in _date_folders(landing_dir, source):
            for path in sorted(day_dir.iterdir()):
                if reason := _why_not_read(path, source, landing_dir):
                    ignore(path, source, day, reason)
    return ignored

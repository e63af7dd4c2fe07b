"""Alerts: a KPI past its threshold, an anomaly, a restatement, a check that failed or could
not run, kept in the publication history and posted once to an optional webhook.

A run turns what it found into `Condition`s (one small function per source below), then
`update_alerts` compares them with the alerts still open in the history file's `alerts` table:
- a condition with no open alert raises a new one (returned, to be notified);
- a condition whose alert is still open only moves its `last_seen_at` (and message): it is
  not raised again; one that became more severe (warning to critical) closes the warning
  alert (`closed_reason` escalated) and raises a critical one;
- an open alert whose condition is gone closes (`resolved`); if the condition comes back
  later, a new alert is raised.
An alert is identified by its key: its kind and what it is about (KPI, grain, period, slice;
or the check's name). Only the kinds a run evaluated can close: a run refused at the checks,
which never read its KPIs, passes `evaluated_kinds` so that threshold alerts stay open.

Which data counts as a condition:
- threshold: of each KPI, grain and slice with a status (a target exists for it in
  kpi_targets), its latest complete period only: a period in progress is held against a
  pro-rated target and moves every day, so it would open and close alerts as it goes.
  at_risk (below the warning attainment) is a warning, off_track (below the critical
  one) critical. The next complete period is a new key: a KPI off track two months running
  raises one alert per month.
- anomaly: the rows of kpi_anomalies from `since` on (the caller's window: the periods judged
  since the previous run, or the last few); its severity as the table gives it.
- restatement: the restatements the caller passes (those this publication detected); of a
  KPI of tier key critical, else a warning.
- check_failed / check_could_not_run: each check result that is not passed; critical for a
  blocking check (it refuses publication), else a warning.

`notify` posts the alerts not yet notified to a Slack or Teams incoming webhook (a JSON body
with a `text` field, which both accept), with a timeout and retries with backoff, and records
the outcome on each alert: `notified_at` when delivered, else `notification_error` (and the
alert stays un-notified, so a later call posts it again). `copy_alerts` writes the table
into a published mart for analysts.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from boussole.sql import quote_identifier, table_exists

KINDS = ("threshold", "anomaly", "restatement", "check_failed", "check_could_not_run")
_RANK = {"warning": 1, "critical": 2}
_STATUS_SEVERITY = {"at_risk": "warning", "off_track": "critical"}
# Beyond this, one message would be too long to read (and Slack truncates text at 40,000).
MAX_LISTED = 20

_ALERTS_DDL = """
create table if not exists alerts (
    alert_id VARCHAR PRIMARY KEY,
    alert_key VARCHAR NOT NULL,      -- kind and what it is about: deduplicates across runs
    kind VARCHAR NOT NULL,           -- threshold | anomaly | restatement | check_failed | ...
    severity VARCHAR NOT NULL,       -- warning | critical
    state VARCHAR NOT NULL,          -- open | closed
    message VARCHAR NOT NULL,        -- in English, as last seen
    kpi_id VARCHAR, kpi_label_fr VARCHAR, grain VARCHAR, period_start DATE,
    dimension VARCHAR, dimension_value VARCHAR,
    check_name VARCHAR,
    run_id VARCHAR,                  -- the run that raised it
    first_raised_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen_run_id VARCHAR,
    closed_at TIMESTAMP WITH TIME ZONE,
    closed_run_id VARCHAR,
    closed_reason VARCHAR,           -- resolved (its condition is gone) | escalated
    notified_at TIMESTAMP WITH TIME ZONE,
    notification_attempts INTEGER NOT NULL DEFAULT 0,
    notification_error VARCHAR       -- the last failed notification's error
);
"""


@dataclass(frozen=True)
class Condition:
    """Something a run found that deserves an alert."""

    kind: str
    severity: str
    message: str
    kpi_id: str | None = None
    kpi_label_fr: str | None = None
    grain: str | None = None
    period_start: date | None = None
    dimension: str | None = None
    dimension_value: str | None = None
    check_name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.severity not in _RANK:
            raise ValueError(f"unknown alert kind or severity: {self.kind}, {self.severity}")

    @classmethod
    def of_value(
        cls, kind: str, severity: str, message: str, row: Mapping[str, Any], label_fr: str | None
    ) -> Condition:
        """A condition on one KPI value: `row` holds its kpi_id, grain, period and slice."""
        return cls(
            kind,
            severity,
            message,
            row["kpi_id"],
            label_fr,
            row["grain"],
            row["period_start"],
            row["dimension"],
            row["dimension_value"],
        )

    @property
    def key(self) -> str:
        if self.check_name is not None:
            return f"{self.kind}|{self.check_name}"
        return "|".join(
            str(part)
            for part in (
                self.kind,
                self.kpi_id,
                self.grain,
                self.period_start,
                self.dimension,
                self.dimension_value,
            )
        )


@dataclass(frozen=True)
class Alert:
    """A row of the `alerts` table."""

    alert_id: str
    alert_key: str
    kind: str
    severity: str
    state: str
    message: str
    kpi_id: str | None
    kpi_label_fr: str | None
    grain: str | None
    period_start: date | None
    dimension: str | None
    dimension_value: str | None
    check_name: str | None
    run_id: str | None
    first_raised_at: datetime
    last_seen_at: datetime
    last_seen_run_id: str | None
    closed_at: datetime | None
    closed_run_id: str | None
    closed_reason: str | None
    notified_at: datetime | None
    notification_attempts: int
    notification_error: str | None


_COLUMNS = tuple(f.name for f in fields(Alert))


@dataclass(frozen=True)
class CheckResult:
    """A check's outcome in a run: status passed, failed or could_not_run."""

    name: str
    status: str
    description: str = ""
    blocking: bool = True


@dataclass(frozen=True)
class Delivery:
    """What became of a webhook post: delivered or not, after how many attempts."""

    ok: bool
    attempts: int
    status: int | None = None  # the last HTTP status received, if any
    error: str | None = None


# --- conditions ---------------------------------------------------------------------------


def kpi_labels(conn: duckdb.DuckDBPyConnection, schema: Sequence[str] = ("main",)) -> dict:
    """{kpi_id: (label_en, label_fr)} from kpi_catalogue in `schema` (of a mart or warehouse)."""
    table = quote_identifier(*schema, "kpi_catalogue")
    rows = conn.execute(f"select kpi_id, label_en, label_fr from {table}").fetchall()
    return {kpi_id: (en, fr) for kpi_id, en, fr in rows}


def threshold_conditions(
    conn: duckdb.DuckDBPyConnection, schema: Sequence[str] = ("main",)
) -> list[Condition]:
    """KPIs at_risk or off_track in the latest complete period of each KPI, grain and slice
    that has a status (kpi_values in `schema`)."""
    labels = kpi_labels(conn, schema)
    rows = conn.execute(
        f"""
        select kpi_id, grain, period_start, period_end, dimension, dimension_value,
            value, target, attainment, status
        from (
            select *, row_number() over (
                partition by kpi_id, grain, dimension, dimension_value
                order by period_start desc
            ) as recency
            from {quote_identifier(*schema, "kpi_values")}
            where is_complete_period and status is not null
        )
        where recency = 1 and list_contains(?, status)
        order by all
        """,
        [list(_STATUS_SEVERITY)],
    ).fetchall()
    conditions = []
    for kpi_id, grain, start, end, dim, dim_value, value, target, attainment, status in rows:
        en, fr = labels.get(kpi_id, (kpi_id, None))
        conditions.append(
            Condition(
                "threshold",
                _STATUS_SEVERITY[status],
                f"{en} is {status.replace('_', ' ')} for the {grain} {start} to {end}, "
                f"{_slice(dim, dim_value)}: {_number(value)} against a target of "
                f"{_number(target)} (attainment {_percent(attainment)}).",
                kpi_id,
                fr,
                grain,
                start,
                dim,
                dim_value,
            )
        )
    return conditions


def anomaly_severity(severity: str | None) -> str | None:
    """The alert severity of a kpi_anomalies row: its own when warning or critical; None for a
    period judged normal or not judged yet (none, not_enough_history)."""
    return severity if severity in ("warning", "critical") else None


def anomaly_conditions(
    rows: duckdb.DuckDBPyRelation | Iterable[Mapping[str, Any]],
    since: date | None = None,
    labels: Mapping[str, tuple[str, str]] | None = None,
) -> list[Condition]:
    """One condition per anomaly of kpi_anomalies (a relation or dicts) from `since` on."""
    conditions = []
    for row in _records(rows):
        severity = anomaly_severity(row["severity"])
        if severity is None or (since is not None and row["period_start"] < since):
            continue
        en, fr = (labels or {}).get(row["kpi_id"], (row["kpi_id"], None))
        conditions.append(
            Condition.of_value(
                "anomaly",
                severity,
                f"{en}: anomaly for the {row['grain']} of {row['period_start']}, "
                f"{_slice(row['dimension'], row['dimension_value'])}: {_number(row['value'])} "
                f"outside the expected range {_number(row['lower_bound'])} to "
                f"{_number(row['upper_bound'])} (expected {_number(row['expected_value'])}, "
                f"score {_number(row['score'])}).",
                row,
                fr,
            )
        )
    return conditions


def restatement_conditions(
    rows: duckdb.DuckDBPyRelation | Iterable[Mapping[str, Any]],
    labels: Mapping[str, tuple[str, str]] | None = None,
) -> list[Condition]:
    """One condition per row of kpi_restatements (boussole/restatements.py) given: pass those
    of this publication, as a relation or dicts."""
    conditions = []
    for row in _records(rows):
        en, fr = (labels or {}).get(row["kpi_id"], (row["kpi_id"], None))
        accepted = (
            f" Accepted by {row['accepted_by']}: {row['acceptance_reason']}."
            if row.get("accepted_by")
            else ""
        )
        conditions.append(
            Condition.of_value(
                "restatement",
                "critical" if row.get("tier") == "key" else "warning",
                f"{en}: the {row['grain']} of {row['period_start']}, "
                f"{_slice(row['dimension'], row['dimension_value'])}, was restated from "
                f"{_number(row['old_value'])} to {_number(row['new_value'])} "
                f"(tolerance {_number(row['tolerance'])}).{accepted}",
                row,
                fr,
            )
        )
    return conditions


def check_conditions(results: Iterable[CheckResult]) -> list[Condition]:
    """One condition per check result that is not passed."""
    conditions = []
    for result in results:
        status = result.status.replace(" ", "_")
        if status == "passed":
            continue
        if status not in ("failed", "could_not_run"):
            raise ValueError(f"unknown status of check {result.name}: {result.status}")
        verb = "failed" if status == "failed" else "could not run"
        conditions.append(
            Condition(
                f"check_{status}",
                "critical" if result.blocking else "warning",
                f"Check {result.name} {verb}"
                + (f": {result.description}" if result.description else "."),
                check_name=result.name,
            )
        )
    return conditions


def _records(rows: duckdb.DuckDBPyRelation | Iterable[Mapping[str, Any]]) -> Iterable[Mapping]:
    if isinstance(rows, duckdb.DuckDBPyRelation):
        return [dict(zip(rows.columns, row, strict=True)) for row in rows.fetchall()]
    return rows


def _slice(dimension: str | None, value: str | None) -> str:
    return "company" if dimension in (None, "all") else f"{dimension} {value}"


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    value = float(value)  # a DECIMAL column comes as Decimal, which formats otherwise
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _percent(value: float | None) -> str:
    return "none" if value is None else f"{float(value):.1%}"


# --- the alerts table ---------------------------------------------------------------------


def ensure_alerts_table(history: duckdb.DuckDBPyConnection) -> None:
    history.execute(_ALERTS_DDL)


def update_alerts(
    history: duckdb.DuckDBPyConnection,
    run_id: str | None,
    at: datetime,
    conditions: Iterable[Condition],
    evaluated_kinds: Iterable[str] = KINDS,
) -> list[Alert]:
    """Brings the `alerts` table of the history connection up to this run's conditions (see
    the module's docstring), in one transaction (none may be open on `history`); `at` is an
    aware datetime. Returns the alerts raised by this run."""
    kinds = set(evaluated_kinds)
    if not kinds <= set(KINDS):
        raise ValueError(f"unknown alert kinds: {sorted(kinds - set(KINDS))}")
    ensure_alerts_table(history)
    current: dict[str, Condition] = {}
    for condition in conditions:
        kept = current.get(condition.key)
        if kept is None or _RANK[condition.severity] > _RANK[kept.severity]:
            current[condition.key] = condition
    history.begin()
    try:
        open_alerts = {
            key: (alert_id, kind, severity)
            for key, alert_id, kind, severity in history.execute(
                "select alert_key, alert_id, kind, severity from alerts where state = 'open'"
            ).fetchall()
        }
        raised = []
        for key, condition in current.items():
            alert_id, _, severity = open_alerts.get(key, (None, None, None))
            if alert_id is not None and _RANK[condition.severity] <= _RANK[severity]:
                history.execute(
                    "update alerts set last_seen_at = ?, last_seen_run_id = ?, message = ?, "
                    "severity = ? where alert_id = ?",
                    [at, run_id, condition.message, condition.severity, alert_id],
                )
                continue
            if alert_id is not None:
                _close(history, [alert_id], run_id, at, "escalated")
            raised.append(_insert(history, condition, run_id, at))
        _close(
            history,
            [
                alert_id
                for key, (alert_id, kind, _) in open_alerts.items()
                if key not in current and kind in kinds
            ],
            run_id,
            at,
            "resolved",
        )
        history.commit()
    except BaseException:
        history.rollback()
        raise
    return raised


def _insert(
    history: duckdb.DuckDBPyConnection, condition: Condition, run_id: str | None, at: datetime
) -> Alert:
    alert = Alert(
        alert_id=uuid.uuid4().hex,
        alert_key=condition.key,
        kind=condition.kind,
        severity=condition.severity,
        state="open",
        message=condition.message,
        kpi_id=condition.kpi_id,
        kpi_label_fr=condition.kpi_label_fr,
        grain=condition.grain,
        period_start=condition.period_start,
        dimension=condition.dimension,
        dimension_value=condition.dimension_value,
        check_name=condition.check_name,
        run_id=run_id,
        first_raised_at=at,
        last_seen_at=at,
        last_seen_run_id=run_id,
        closed_at=None,
        closed_run_id=None,
        closed_reason=None,
        notified_at=None,
        notification_attempts=0,
        notification_error=None,
    )
    history.execute(
        f"insert into alerts ({', '.join(_COLUMNS)}) values ({', '.join('?' for _ in _COLUMNS)})",
        [getattr(alert, column) for column in _COLUMNS],
    )
    return alert


def _close(
    history: duckdb.DuckDBPyConnection,
    alert_ids: list[str],
    run_id: str | None,
    at: datetime,
    reason: str,
) -> None:
    history.execute(
        "update alerts set state = 'closed', closed_at = ?, closed_run_id = ?, closed_reason = ? "
        "where list_contains(?, alert_id)",
        [at, run_id, reason, alert_ids],
    )


def unnotified_alerts(history: duckdb.DuckDBPyConnection) -> list[Alert]:
    """Open alerts no notification reached yet, oldest first: those just raised, and any whose
    earlier notification failed."""
    ensure_alerts_table(history)
    rows = history.execute(
        f"select {', '.join(_COLUMNS)} from alerts "
        "where state = 'open' and notified_at is null order by first_raised_at, alert_key"
    ).fetchall()
    return [Alert(*row) for row in rows]


def raised_in_run(history: Path, run_id: str) -> list[Alert]:
    """The alerts the run `run_id` raised, critical first, from the history file `history`."""
    if not history.exists():
        return []
    with duckdb.connect(str(history), read_only=True) as conn:
        if not table_exists(conn, "alerts"):
            return []
        rows = conn.execute(
            f"select {', '.join(_COLUMNS)} from alerts where run_id = ? "
            "order by severity = 'critical' desc, first_raised_at, alert_key",
            [run_id],
        ).fetchall()
    return [Alert(*row) for row in rows]


def copy_alerts(history: duckdb.DuckDBPyConnection, mart: duckdb.DuckDBPyConnection) -> int:
    """Replaces `alerts` in the default schema of the mart `mart` with the history's; returns
    its number of rows. Copied through Arrow, so the mart needs no ATTACH of the history file
    (which the caller's own connection holds)."""
    ensure_alerts_table(history)
    table = history.sql("select * from alerts order by first_raised_at, alert_key").to_arrow_table()
    mart.register("alerts_from_history", table)
    try:
        mart.execute("create or replace table main.alerts as select * from alerts_from_history")
    finally:
        mart.unregister("alerts_from_history")
    return table.num_rows


# --- notification -------------------------------------------------------------------------


def webhook_payload(alerts: Sequence[Alert]) -> dict[str, str]:
    """One message for all the alerts: `text` is what Slack and Teams incoming webhooks both
    read (plain lines: Slack's and Teams' markdown differ beyond a list), critical first."""
    critical = sum(alert.severity == "critical" for alert in alerts)
    head = f"Boussole: {len(alerts)} alert(s), {critical} critical"
    ordered = sorted(alerts, key=lambda alert: -_RANK[alert.severity])  # critical first
    lines = [f"- [{alert.severity}] {alert.message}" for alert in ordered[:MAX_LISTED]]
    if len(alerts) > MAX_LISTED:
        lines.append(f"- ... and {len(alerts) - MAX_LISTED} more (table alerts)")
    return {"text": head + "\n\n" + "\n".join(lines)}


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 1.0,
) -> Delivery:
    """POSTs `payload` as JSON; retries after a network error, a timeout, a 429 or a 5xx,
    waiting backoff, 2 x backoff, ... between attempts. Any other status is final."""
    body = json.dumps(payload).encode()
    status, error = None, None
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Delivery(True, attempt, response.status)
        except urllib.error.HTTPError as refused:
            status, error = refused.code, f"HTTP {refused.code} {refused.reason}"
            if refused.code != 429 and refused.code < 500:
                return Delivery(False, attempt, status, error)
        except (OSError, http.client.HTTPException) as failed:
            status, error = None, _describe(failed)
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, attempts, status, error)


def _describe(error: Exception) -> str:
    # URLError wraps the socket's error (refused, timed out while connecting); a timeout
    # while waiting for the answer comes bare.
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    return f"{type(cause).__name__}: {cause}" if isinstance(cause, Exception) else str(cause)


def notify(
    history: duckdb.DuckDBPyConnection,
    alerts: Sequence[Alert],
    url: str | None,
    at: datetime | None = None,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 1.0,
) -> Delivery | None:
    """Posts `alerts` (unnotified_alerts, typically) to the webhook `url` in one message and
    records the outcome on each: notified_at, or notification_error; notification_attempts
    counts every attempt. None when there is no URL or nothing to send."""
    if not url or not alerts:
        return None
    delivery = post_webhook(url, webhook_payload(alerts), timeout, attempts, backoff)
    history.execute(
        "update alerts set notified_at = ?, notification_error = ?, "
        "notification_attempts = notification_attempts + ? "
        "where list_contains(?, alert_id)",
        [
            (at or datetime.now(UTC)) if delivery.ok else None,
            delivery.error if not delivery.ok else None,
            delivery.attempts,
            [alert.alert_id for alert in alerts],
        ],
    )
    return delivery

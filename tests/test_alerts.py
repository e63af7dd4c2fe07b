"""Alerts (boussole/alerts.py): conditions from the data, deduplication across runs in the
history's `alerts` table, and the webhook against a real local HTTP server."""

import time
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from boussole import alerts
from boussole.alerts import CheckResult, Condition
from boussole.history import ensure_history

T1 = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T1 + timedelta(days=2)

REVENUE_AT_RISK = Condition(
    "threshold", "warning", "Revenue is at risk", "revenue", "Chiffre d'affaires", "month",
    date(2026, 3, 1), "all", "all",
)  # fmt: skip
SUITE_FAILED = Condition(
    "check_failed", "critical", "Check fct_tickets failed", check_name="fct_tickets"
)


@pytest.fixture
def history():
    with duckdb.connect() as conn:
        yield conn


def states(path):
    with duckdb.connect(str(path), read_only=True) as history:
        return history.execute(
            "select alert_key, state, closed_reason, run_id, first_raised_at, last_seen_at, "
            "closed_at from alerts order by first_raised_at, alert_key"
        ).fetchall()


def run(path, run_id, at, conditions):
    """A run of its own: the history file opened, updated and closed."""
    with duckdb.connect(str(path)) as history:
        return alerts.update_alerts(history, run_id, at, conditions)


def test_an_open_alert_is_not_raised_again_and_one_that_comes_back_is(tmp_path):
    path = tmp_path / "publications.duckdb"
    raised = run(path, "run-1", T1, [REVENUE_AT_RISK, SUITE_FAILED])
    assert [a.alert_key for a in raised] == [
        "threshold|revenue|month|2026-03-01|all|all",
        "check_failed|fct_tickets",
    ]
    assert [(a.severity, a.state, a.run_id, a.kpi_label_fr) for a in raised] == [
        ("warning", "open", "run-1", "Chiffre d'affaires"),
        ("critical", "open", "run-1", None),
    ]

    # Run 2: the KPI is still at risk (nothing raised), the check passed (closed).
    assert run(path, "run-2", T2, [REVENUE_AT_RISK]) == []
    assert states(path) == [
        ("check_failed|fct_tickets", "closed", "resolved", "run-1", T1, T1, T2),
        ("threshold|revenue|month|2026-03-01|all|all", "open", None, "run-1", T1, T2, None),
    ]

    # Run 3: the check fails again: a new alert; the KPI's is still the one of run 1.
    raised = run(path, "run-3", T3, [REVENUE_AT_RISK, SUITE_FAILED])
    assert [(a.alert_key, a.run_id, a.first_raised_at) for a in raised] == [
        ("check_failed|fct_tickets", "run-3", T3)
    ]
    assert states(path) == [
        ("check_failed|fct_tickets", "closed", "resolved", "run-1", T1, T1, T2),
        ("threshold|revenue|month|2026-03-01|all|all", "open", None, "run-1", T1, T3, None),
        ("check_failed|fct_tickets", "open", None, "run-3", T3, T3, None),
    ]
    with duckdb.connect(str(path)) as history:
        assert history.execute("select count(distinct alert_id) from alerts").fetchone() == (3,)


def test_an_escalation_raises_a_critical_alert_and_only_evaluated_kinds_close(history):
    alerts.update_alerts(history, "run-1", T1, [REVENUE_AT_RISK])
    off_track = Condition(**{**REVENUE_AT_RISK.__dict__, "severity": "critical"})
    # The same condition twice in one run (two sources) is one alert, at its worst severity.
    raised = alerts.update_alerts(history, "run-2", T2, [REVENUE_AT_RISK, off_track])
    assert [(a.severity, a.first_raised_at) for a in raised] == [("critical", T2)]
    # Back to at risk: the open alert is updated, not raised again.
    assert alerts.update_alerts(history, "run-3", T3, [REVENUE_AT_RISK]) == []
    assert history.execute(
        "select severity, state, closed_reason from alerts order by first_raised_at"
    ).fetchall() == [("warning", "closed", "escalated"), ("warning", "open", None)]

    # A run that evaluated the checks only leaves the threshold alert open.
    alerts.update_alerts(history, "run-4", T3, [], evaluated_kinds=["check_failed"])
    assert history.execute("select count(*) from alerts where state = 'open'").fetchone() == (1,)
    alerts.update_alerts(history, "run-5", T3, [])
    assert history.execute("select count(*) from alerts where state = 'open'").fetchone() == (0,)
    with pytest.raises(ValueError, match="thresholds"):
        alerts.update_alerts(history, "run-6", T3, [], evaluated_kinds=["thresholds"])


def test_thresholds_read_the_latest_complete_period_of_each_kpi_grain_and_slice():
    conn = duckdb.connect()
    conn.execute(
        "create table kpi_catalogue as select * from (values "
        "('revenue', 'Revenue', 'Chiffre d''affaires'), ('csat', 'CSAT', 'Satisfaction')) "
        "as t(kpi_id, label_en, label_fr)"
    )
    conn.execute(
        """
        create table kpi_values as select * from (values
            -- revenue, company: March (at risk) is the latest complete month; February
            -- (off track) is older and April (off track, paced) is in progress.
            ('revenue', 'month', date '2026-02-01', date '2026-02-28', 'all', 'all',
                300000.0, 500000.0, 0.6, 'off_track', true),
            ('revenue', 'month', date '2026-03-01', date '2026-03-31', 'all', 'all',
                460000.0, 500000.0, 0.92, 'at_risk', true),
            ('revenue', 'month', date '2026-04-01', date '2026-04-30', 'all', 'all',
                1000.0, 16666.0, 0.06, 'off_track', false),
            -- a team on track in March, off track in February: no alert
            ('revenue', 'month', date '2026-02-01', date '2026-02-28', 'team', 'A',
                10.0, 90000.0, 0.0001, 'off_track', true),
            ('revenue', 'month', date '2026-03-01', date '2026-03-31', 'team', 'A',
                95000.0, 90000.0, 1.06, 'on_track', true),
            -- the latest complete quarter without a target: no status, no alert
            ('revenue', 'quarter', date '2026-01-01', date '2026-03-31', 'all', 'all',
                900000.0, null, null, null, true),
            ('csat', 'month', date '2026-03-01', date '2026-03-31', 'all', 'all',
                70.0, 85.0, 0.8235, 'off_track', true)
        ) as t(kpi_id, grain, period_start, period_end, dimension, dimension_value, value,
               target, attainment, status, is_complete_period)
        """
    )
    found = alerts.threshold_conditions(conn)
    assert [(c.key, c.severity, c.kpi_label_fr) for c in found] == [
        ("threshold|csat|month|2026-03-01|all|all", "critical", "Satisfaction"),
        ("threshold|revenue|month|2026-03-01|all|all", "warning", "Chiffre d'affaires"),
    ]
    assert found[1].message == (
        "Revenue is at risk for the month 2026-03-01 to 2026-03-31, company: 460,000 against "
        "a target of 500,000 (attainment 92.0%)."
    )


ANOMALY = {
    "kpi_id": "sessions",
    "grain": "day",
    "period_start": date(2026, 3, 4),
    "dimension": "channel",
    "dimension_value": "Organic Search",
    "value": 120.0,
    "expected_value": 410.0,
    "lower_bound": 300.0,
    "upper_bound": 520.0,
    "score": -5.25,
    "severity": "critical",
}


def test_anomalies_from_dicts_or_a_relation_from_a_date_on():
    rows = [
        ANOMALY,
        {**ANOMALY, "dimension": "all", "dimension_value": "all", "severity": "warning"},
        {**ANOMALY, "period_start": date(2026, 3, 3)},  # before `since`
        {**ANOMALY, "dimension_value": "Direct", "severity": "none"},  # judged, normal
        {**ANOMALY, "dimension_value": "Email", "severity": "not_enough_history"},
    ]
    labels = {"sessions": ("Sessions", "Sessions web")}
    found = alerts.anomaly_conditions(rows, since=date(2026, 3, 4), labels=labels)
    assert [(c.kind, c.key, c.severity) for c in found] == [
        ("anomaly", "anomaly|sessions|day|2026-03-04|channel|Organic Search", "critical"),
        ("anomaly", "anomaly|sessions|day|2026-03-04|all|all", "warning"),
    ]
    assert found[0].message == (
        "Sessions: anomaly for the day of 2026-03-04, channel Organic Search: 120 outside the "
        "expected range 300 to 520 (expected 410, score -5.25)."
    )
    assert found[0].kpi_label_fr == "Sessions web"

    # The same rows as a relation of a kpi_anomalies table.
    conn = duckdb.connect()
    conn.execute(
        "create table kpi_anomalies as select * from (select unnest(?, recursive := true))",
        [rows],
    )
    from_table = alerts.anomaly_conditions(conn.table("kpi_anomalies"), since=date(2026, 3, 4))
    assert [c.key for c in from_table] == [c.key for c in found]


def test_restatements_from_the_history_table(tmp_path):
    path = tmp_path / "publications.duckdb"
    ensure_history(path)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "insert into kpi_restatements by name select * from (values "
            "('p1-1', 'p1', 'revenue', 'key', 'month', date '2026-01-01', 'all', 'all', "
            "  1000.0, 1200.0, 0.0001, null, null), "
            "('p1-2', 'p1', 'leads', 'supporting', 'week', date '2026-01-05', 'channel', "
            "  'Direct', 40.0, 38.0, 0.0, 'ana', 'late CRM export')) "
            "as t(restatement_id, publication_id, kpi_id, tier, grain, period_start, "
            "dimension, dimension_value, old_value, new_value, tolerance, accepted_by, "
            "acceptance_reason)"
        )
        found = alerts.restatement_conditions(
            conn.sql("select * from kpi_restatements order by restatement_id")
        )
    assert [(c.key, c.severity) for c in found] == [
        ("restatement|revenue|month|2026-01-01|all|all", "critical"),
        ("restatement|leads|week|2026-01-05|channel|Direct", "warning"),
    ]
    assert found[0].message == (
        "revenue: the month of 2026-01-01, company, was restated from 1,000 to 1,200 "
        "(tolerance 0.0001)."
    )
    assert found[1].message.endswith("(tolerance 0). Accepted by ana: late CRM export.")


def test_checks_that_failed_or_could_not_run():
    found = alerts.check_conditions(
        [
            CheckResult("kpi_values_suite on marts/kpi_values", "passed"),
            CheckResult("fct_tickets_suite on marts/fct_tickets", "failed", "2 negative"),
            CheckResult("web_volume on raw_web/events", "could not run", "", blocking=False),
        ]
    )
    assert [(c.key, c.kind, c.severity, c.message) for c in found] == [
        (
            "check_failed|fct_tickets_suite on marts/fct_tickets",
            "check_failed",
            "critical",
            "Check fct_tickets_suite on marts/fct_tickets failed: 2 negative",
        ),
        (
            "check_could_not_run|web_volume on raw_web/events",
            "check_could_not_run",
            "warning",
            "Check web_volume on raw_web/events could not run.",
        ),
    ]
    with pytest.raises(ValueError, match="skipped"):
        alerts.check_conditions([CheckResult("x", "skipped")])


def test_the_alerts_table_is_copied_whole_into_a_mart(history):
    alerts.update_alerts(history, "run-1", T1, [REVENUE_AT_RISK, SUITE_FAILED])
    alerts.update_alerts(history, "run-2", T2, [REVENUE_AT_RISK])
    mart = duckdb.connect()
    assert alerts.copy_alerts(history, mart) == 2
    assert alerts.copy_alerts(history, mart) == 2  # replaced, not appended
    assert mart.execute(
        "select alert_key, state, last_seen_at from main.alerts order by alert_key"
    ).fetchall() == [
        ("check_failed|fct_tickets", "closed", T1),
        ("threshold|revenue|month|2026-03-01|all|all", "open", T2),
    ]
    assert [c[0] for c in mart.execute("describe main.alerts").fetchall()] == list(alerts._COLUMNS)


# --- the webhook, against a real HTTP server -----------------------------------------------


def notification_state(history):
    return history.execute(
        "select alert_key, notified_at, notification_attempts, notification_error "
        "from alerts order by first_raised_at, alert_key"
    ).fetchall()


EXPECTED_TEXT = (
    "Boussole: 2 alert(s), 1 critical\n\n"
    "- [critical] Check fct_tickets failed\n"
    "- [warning] Revenue is at risk"
)


def test_the_webhook_is_retried_until_it_accepts(history, webhook):
    server = webhook(failures=2)
    alerts.update_alerts(history, "run-1", T1, [REVENUE_AT_RISK, SUITE_FAILED])
    pending = alerts.unnotified_alerts(history)
    delivery = alerts.notify(history, pending, server.url, at=T2, attempts=3, backoff=0.01)
    assert delivery == alerts.Delivery(ok=True, attempts=3, status=200)
    # Three posts of the same body, which Slack and Teams both read.
    assert server.received == [("application/json", {"text": EXPECTED_TEXT})] * 3
    assert notification_state(history) == [
        ("check_failed|fct_tickets", T2, 3, None),
        ("threshold|revenue|month|2026-03-01|all|all", T2, 3, None),
    ]
    assert alerts.unnotified_alerts(history) == []


def test_a_webhook_that_keeps_failing_leaves_the_alerts_to_notify(history, webhook):
    alerts.update_alerts(history, "run-1", T1, [REVENUE_AT_RISK, SUITE_FAILED])
    failing = webhook(failures=99)
    delivery = alerts.notify(
        history, alerts.unnotified_alerts(history), failing.url, at=T2, backoff=0.01
    )
    assert delivery == alerts.Delivery(
        ok=False, attempts=3, status=500, error="HTTP 500 Internal Server Error"
    )
    assert len(failing.received) == 3
    assert notification_state(history) == [
        ("check_failed|fct_tickets", None, 3, "HTTP 500 Internal Server Error"),
        ("threshold|revenue|month|2026-03-01|all|all", None, 3, "HTTP 500 Internal Server Error"),
    ]

    # A refusal (4xx other than 429) is not retried.
    refusing = webhook(failures=99, failure_status=404)
    delivery = alerts.notify(history, alerts.unnotified_alerts(history), refusing.url, at=T2)
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 404)
    assert len(refusing.received) == 1

    # The next run posts them again, with what it raised meanwhile.
    alerts.update_alerts(history, "run-2", T3, [REVENUE_AT_RISK, SUITE_FAILED])
    working = webhook()
    pending = alerts.unnotified_alerts(history)
    assert len(pending) == 2
    assert alerts.notify(history, pending, working.url, at=T3).ok
    assert working.received == [("application/json", {"text": EXPECTED_TEXT})]
    assert [row[1:] for row in notification_state(history)] == [(T3, 5, None), (T3, 5, None)]


def test_a_webhook_that_hangs_times_out(history, webhook):
    server = webhook(hang=True)
    alerts.update_alerts(history, "run-1", T1, [SUITE_FAILED])
    started = time.monotonic()
    delivery = alerts.notify(
        history, alerts.unnotified_alerts(history), server.url, timeout=0.3, attempts=2,
        backoff=0.05,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 2, None)
    assert "timed out" in delivery.error
    assert len(server.received) == 2
    [(_, notified_at, attempts, error)] = notification_state(history)
    assert (notified_at, attempts, error) == (None, 2, delivery.error)


def test_nothing_is_posted_without_a_url_or_alerts(history, webhook):
    server = webhook()
    alerts.update_alerts(history, "run-1", T1, [SUITE_FAILED])
    assert alerts.notify(history, alerts.unnotified_alerts(history), None) is None
    assert alerts.notify(history, [], server.url) is None
    assert server.received == []
    assert notification_state(history)[0][1:] == (None, 0, None)

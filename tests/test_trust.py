"""The trust status of each published value (boussole/trust.py), on a hand-made mart: which
checks, anomalies, restatements and gaps reach which value, and which status wins."""

from datetime import date, datetime

import duckdb
import pytest

from boussole.trust import annotate_trust

AS_OF = date(2026, 2, 10)
RUN, EARLIER_RUN = "run-2", "run-1"
# Revenue is read from fct_deals (the CRM), sessions from fct_web_sessions (the web).
CATALOGUE = {
    "revenue": {
        "id": "revenue",
        "unit": "currency",
        "computation": {"type": "aggregate", "fact": "fct_deals", "date": "close_date"},
    },
    "sessions": {
        "id": "sessions",
        "unit": "count",
        "computation": {"type": "aggregate", "fact": "fct_web_sessions", "date": "session_date"},
    },
}


@pytest.fixture
def mart():
    conn = duckdb.connect()
    conn.execute(
        """
        create table kpi_catalogue as select * from (values
            ('revenue', 'crm'), ('sessions', 'web')) as t(kpi_id, source_systems);
        create table kpi_values as select kpi_id, grain, period_start::date as period_start,
            period_end::date as period_end, 'all' as dimension, 'all' as dimension_value,
            value, complete as is_complete_period, missing as missing_source_days
        from (values
            ('revenue', 'month', '2026-01-01', '2026-01-31', 1660.0, true, null),
            ('revenue', 'month', '2026-02-01', '2026-02-28', 460.0, false, null),
            ('revenue', 'month', '2025-12-01', '2025-12-31', 900.0, false,
                'crm 1 day (first 2025-12-24)'),
            ('sessions', 'month', '2026-01-01', '2026-01-31', 3000.0, true, null),
            ('sessions', 'day', '2026-01-20', '2026-01-20', 250.0, true, null),
            ('sessions', 'week', '2026-01-26', '2026-02-01', 700.0, true, null),
            ('sessions', 'day', '2026-02-05', '2026-02-05', 90.0, true, null)
        ) as t(kpi_id, grain, period_start, period_end, value, complete, missing);
        create table kpi_anomalies as select kpi_id, grain, period_start::date as period_start,
            'all' as dimension, 'all' as dimension_value, value::double as value,
            expected_value::double as expected_value, score::double as score, severity, kind
        from (values
            ('sessions', 'day', '2026-01-20', 250.0, 100.0, 5.24, 'warning', 'spike'),
            ('sessions', 'day', '2026-01-21', 100.0, 100.0, 0.1, 'none', null)
        ) as t(kpi_id, grain, period_start, value, expected_value, score, severity, kind);
        create table kpi_restatements as select * from (values
            ('p2', 'sessions', 'week', date '2026-01-26', 'all', 'all', 680.0, 700.0),
            ('p1', 'sessions', 'month', date '2026-01-01', 'all', 'all', 2900.0, 3000.0)
        ) as t(publication_id, kpi_id, grain, period_start, dimension, dimension_value,
            old_value, new_value);
        create table quality_results (run_id varchar, checked_at timestamptz,
            check_name varchar, expectation varchar, table_name varchar,
            extract_dates date[], status varchar, note varchar);
        """
    )
    conn.executemany(
        "insert into quality_results values (?, ?, ?, ?, ?, ?, ?, null)",
        [
            # The CRM's day of 12 January failed its volume check in the earlier run and still
            # does (judged again); its day of 14 January failed then, but passed when judged
            # again in this run: only the latest verdict on a day counts.
            (EARLIER_RUN, T1, "gx_raw_quality", "volume", "raw_crm.deals", [D12, D14], "failed"),
            (RUN, T2, "gx_raw_quality", "volume", "raw_crm.deals", [D12], "failed"),
            (RUN, T2, "gx_raw_quality", "volume", "raw_crm.deals", [D14], "passed"),
            # The web's day of 5 February could not be judged (too short a history).
            (
                RUN,
                T2,
                "gx_raw_quality",
                "volume",
                "raw_web.events",
                [date(2026, 2, 5)],
                "could_not_run",
            ),
            # A warning of this run's suite on fct_deals reaches every revenue value; the same
            # suite's failure of the earlier run reaches none.
            (RUN, T2, "gx_fct_deals", "amount_far_outliers", "marts.fct_deals", None, "failed"),
            (
                EARLIER_RUN,
                T1,
                "gx_fct_web_sessions",
                "share",
                "marts.fct_web_sessions",
                None,
                "failed",
            ),
        ],
    )
    return conn


D12, D14, D15, D16 = (date(2026, 1, day) for day in (12, 14, 15, 16))
T1, T2 = datetime(2026, 2, 9, 7), datetime(2026, 2, 10, 7)
FACT_WARNING = "gx_fct_deals amount_far_outliers failed"


def trust(conn) -> dict[tuple, tuple]:
    return {
        (kpi, grain, str(start)): (status, reasons)
        for kpi, grain, start, status, reasons in conn.execute(
            "select kpi_id, grain, period_start, trust_status, trust_reasons from kpi_values"
        ).fetchall()
    }


def test_each_value_takes_the_most_serious_status_of_its_own_inputs(mart):
    counts = annotate_trust(mart, CATALOGUE, "p2", [RUN], AS_OF)
    assert trust(mart) == {
        # A failed check on a CRM day of January, and the fact's warning: untrusted.
        ("revenue", "month", "2026-01-01"): (
            "untrusted",
            f"{FACT_WARNING}; raw_crm.deals volume failed on 2026-01-12",
        ),
        # Still in progress (and the fact's warning, which alone would make it untrusted).
        ("revenue", "month", "2026-02-01"): ("untrusted", f"{FACT_WARNING}; period in progress"),
        ("revenue", "month", "2025-12-01"): (
            "untrusted",
            f"{FACT_WARNING}; missing source days: crm 1 day (first 2025-12-24)",
        ),
        # The web passed every check of January; the month's restatement was an earlier
        # publication's.
        ("sessions", "month", "2026-01-01"): ("trusted", None),
        ("sessions", "day", "2026-01-20"): (
            "warning",
            "anomaly: spike (score 5.2, expected 100.0)",
        ),
        ("sessions", "week", "2026-01-26"): ("warning", "restated from 680.0 to 700.0"),
        ("sessions", "day", "2026-02-05"): (
            "warning",
            "raw_web.events volume could not run on 2026-02-05",
        ),
    }
    assert counts == {"untrusted": 3, "trusted": 1, "warning": 3}


@pytest.mark.parametrize(
    "audit_runs, suites_of",
    [
        ([RUN], RUN),
        # A re-execution of RUN that ran no suite (only the publication failed in RUN): RUN's.
        (["run-3", RUN], RUN),
        # The latest of the runs counts, whatever their order.
        ([EARLIER_RUN, RUN], RUN),
        ([EARLIER_RUN], EARLIER_RUN),
        ([], None),
    ],
)
def test_the_suites_of_the_latest_run_that_audited_the_build_count(mart, audit_runs, suites_of):
    annotate_trust(mart, CATALOGUE, "p2", audit_runs, AS_OF)
    found = trust(mart)
    deals_warned = FACT_WARNING in (found["revenue", "month", "2026-01-01"][1] or "")
    sessions_warned = "gx_fct_web_sessions share failed" in (
        found["sessions", "month", "2026-01-01"][1] or ""
    )
    assert (deals_warned, sessions_warned) == (suites_of == RUN, suites_of == EARLIER_RUN)


def test_a_gap_or_a_period_in_progress_is_incomplete_without_failed_checks(mart):
    mart.execute("delete from quality_results where check_name = 'gx_fct_deals'")
    annotate_trust(mart, CATALOGUE, "p2", [RUN], AS_OF)
    found = trust(mart)
    assert found["revenue", "month", "2026-02-01"] == ("incomplete", "period in progress")
    assert found["revenue", "month", "2025-12-01"] == (
        "incomplete",
        "missing source days: crm 1 day (first 2025-12-24)",
    )
    assert found["revenue", "month", "2026-01-01"] == (
        "untrusted",
        "raw_crm.deals volume failed on 2026-01-12",
    )


def test_a_raw_day_not_judged_for_lack_of_history_is_a_reason_not_a_warning(mart):
    mart.execute(
        "update quality_results set note = 'could not run: 12 days of history, 28 needed' "
        "where table_name = 'raw_web.events'"
    )
    annotate_trust(mart, CATALOGUE, "p2", [RUN], AS_OF)
    assert trust(mart)["sessions", "day", "2026-02-05"] == (
        "trusted",
        "raw_web.events volume not judged yet (too short a history) on 2026-02-05",
    )


def test_each_reason_is_also_in_french_in_the_same_order(mart):
    # Checks failed on two and on three CRM days of January, a raw day not judged for lack of
    # history, and a gap of two sources, one of several days.
    mart.executemany(
        "insert into quality_results values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (RUN, T2, "gx_raw_quality", "nulls", "raw_crm.deals", [D14, D15], "failed", None),
            (RUN, T2, "gx_raw_quality", "keys", "raw_crm.deals", [D14, D15, D16], "failed", None),
            (
                RUN,
                T2,
                "gx_raw_quality",
                "share",
                "raw_web.events",
                [date(2026, 2, 5)],
                "could_not_run",
                "could not run: 12 days of history, 28 needed",
            ),
        ],
    )
    mart.execute(
        "update kpi_values set missing_source_days = "
        "'crm 1 day (first 2025-12-24); web 3 days (first 2025-12-28)' "
        "where period_start = '2025-12-01'"
    )
    # An anomaly of each other kind, and one of no kind.
    mart.execute(
        """
        insert into kpi_anomalies values
            ('sessions', 'month', '2026-01-01', 'all', 'all', 3000.0, 2000.0, -4.0, 'critical',
                'drop'),
            ('sessions', 'week', '2026-01-26', 'all', 'all', 700.0, 600.0, 3.5, 'warning',
                'level_shift'),
            ('sessions', 'day', '2026-02-05', 'all', 'all', 90.0, 80.0, 3.0, 'warning', 'drift'),
            ('revenue', 'month', '2026-02-01', 'all', 'all', 460.0, 500.0, 3.25, 'critical', null)
        """
    )
    annotate_trust(mart, CATALOGUE, "p2", [RUN], AS_OF)
    french = {
        (kpi, grain, str(start)): reasons
        for kpi, grain, start, reasons in mart.execute(
            "select kpi_id, grain, period_start, trust_reasons_fr from kpi_values"
        ).fetchall()
    }
    fact_warning = "gx_fct_deals amount_far_outliers en échec"
    assert french == {
        ("revenue", "month", "2026-01-01"): (
            f"{fact_warning}; raw_crm.deals keys en échec le 2026-01-14 (et 2 autres jours); "
            "raw_crm.deals nulls en échec le 2026-01-14 (et 1 autre jour); "
            "raw_crm.deals volume en échec le 2026-01-12"
        ),
        ("revenue", "month", "2026-02-01"): (
            f"{fact_warning}; période en cours; anomalie : critique (score 3,3, attendu 500,0)"
        ),
        ("revenue", "month", "2025-12-01"): (
            f"{fact_warning}; jours de source manquants : crm 1 jour (premier 2025-12-24); "
            "web 3 jours (premier 2025-12-28)"
        ),
        ("sessions", "month", "2026-01-01"): "anomalie : chute (score -4,0, attendu 2000,0)",
        ("sessions", "day", "2026-01-20"): "anomalie : pic (score 5,2, attendu 100,0)",
        ("sessions", "week", "2026-01-26"): (
            "anomalie : changement de niveau (score 3,5, attendu 600,0); retraité de 680,0 à 700,0"
        ),
        # Most serious first: a check that could not run comes before a day not judged yet.
        ("sessions", "day", "2026-02-05"): (
            "anomalie : dérive (score 3,0, attendu 80,0); "
            "raw_web.events volume n'a pas pu s'exécuter le 2026-02-05; "
            "raw_web.events share pas encore jugé (historique trop court) le 2026-02-05"
        ),
    }
    # The English reasons, in the same order.
    english = {key: reasons for key, (_, reasons) in trust(mart).items()}
    assert english["revenue", "month", "2026-01-01"] == (
        f"{FACT_WARNING}; raw_crm.deals keys failed on 2026-01-14 (and 2 more days); "
        "raw_crm.deals nulls failed on 2026-01-14 (and 1 more day); "
        "raw_crm.deals volume failed on 2026-01-12"
    )
    assert english["sessions", "day", "2026-02-05"] == (
        "anomaly: drift (score 3.0, expected 80.0); "
        "raw_web.events volume could not run on 2026-02-05; "
        "raw_web.events share not judged yet (too short a history) on 2026-02-05"
    )

"""The web KPIs of the catalogue, worked out by hand on tests/fixtures/kpi_web.

Reporting time zone Europe/Paris: UTC+1 in January 2026. ISO weeks start on Monday
(2026-01-05 and 2026-01-12). The KPIs are as of the latest extract date, 2026-01-12.

The fixture's seven sessions (user/ga_session_id, Paris date, channel from source/medium):
  S1 u1/1001  01-05 10:00  google/organic -> Organic Search. One page view, 12 s of
              engagement: engaged by engagement time alone (12 000 ms > 10 000). 12 s long.
  S2 u2/2001  01-05 23:50 -> 01-06 00:20  newsletter/email -> Email. Spans Paris midnight:
              counted on 01-05, the date of its first event. Two page views: engaged. 1800 s.
  S3 u3/3001  01-06 00:30 (23:30Z on 01-05)  google/cpc -> Paid Search. One page view, 3 s
              of engagement, a generate_lead key event: engaged by the key event alone. 5 s.
  S4 u1/1002  01-07  no source/medium -> Direct. The bounce: one page view, no key event and
              exactly 10 s of engagement (6 000 + 4 000 ms), which is not over 10 s. 10 s long.
  S5 u4/4001  01-08  google/cpc -> Paid Search. Known to GA4 since 2025-12-01 (first touch),
              so not a new user. Two page views; purchase T-100 (120 EUR) logged at 16:02:00Z
              and again at 16:02:30Z (a reload); the 16:01 page view and the 16:02:00 purchase
              are delivered again by the 01-09 extract. 150 s long (16:00:00 -> 16:02:30).
  S6 u5/5001  01-12  facebook/paid_social -> Paid Social. One page view and purchase T-200,
              50 USD (a key event): engaged. 20 s long. USD rate on 01-12: 0.92 (set 01-09).
  S7 u1/1003  01-12  bing/organic -> Organic Search. Two page views: engaged. 30 s long.
u1 has three sessions (01-05, 01-07, 01-12): one user per grain, never summed.
"""

import pytest

from tests.conftest import kpi_series, kpi_slices, publish_fixture

pytestmark = pytest.mark.e2e

DAYS_WITHOUT_SESSIONS = ("2026-01-09", "2026-01-10", "2026-01-11")
# Session durations in seconds, S1..S7 (last event - first event).
S1, S2, S3, S4, S5, S6, S7 = 12, 1800, 5, 10, 150, 20, 30
USD_RATE_ON_01_12 = 0.92


def approx(expected):
    return {period: pytest.approx(value) for period, value in expected.items()}


def with_empty_days(expected_days):
    """A count's company-wide days: the days without data between its first day and the
    as-of date hold 0."""
    return {**expected_days, **{day: 0.0 for day in DAYS_WITHOUT_SESSIONS}}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return publish_fixture(tmp_path_factory, "kpi_web")


def test_sessions_by_paris_date_of_their_first_event(published):
    # S2 starts 23:50 Paris on 01-05 and ends on 01-06: 01-05. S3 starts 23:30Z on 01-05,
    # 00:30 Paris: 01-06 (a UTC date would give 01-05).
    assert kpi_series(published, "sessions", "day") == with_empty_days(
        {
            "2026-01-05": 2.0,  # S1, S2
            "2026-01-06": 1.0,  # S3
            "2026-01-07": 1.0,  # S4
            "2026-01-08": 1.0,  # S5
            "2026-01-12": 2.0,  # S6, S7
        }
    )
    assert kpi_series(published, "sessions", "week") == {
        "2026-01-05": 2 + 1 + 1 + 1,
        "2026-01-12": 2,
    }
    assert kpi_series(published, "sessions", "month") == {"2026-01-01": 7.0}


def test_users_are_counted_per_grain_not_summed(published):
    # u1 has a session on 01-05, 01-07 and 01-12.
    assert kpi_series(published, "users", "day") == {
        "2026-01-05": 2.0,  # u1, u2
        "2026-01-06": 1.0,  # u3
        "2026-01-07": 1.0,  # u1
        "2026-01-08": 1.0,  # u4
        "2026-01-12": 2.0,  # u5, u1
    }
    # Week of 01-05: {u1, u2, u3, u4} = 4, not the 2 + 1 + 1 + 1 = 5 of its days.
    assert kpi_series(published, "users", "week") == {"2026-01-05": 4.0, "2026-01-12": 2.0}
    # January: {u1, u2, u3, u4, u5} = 5, not the 4 + 2 = 6 of its weeks.
    assert kpi_series(published, "users", "month") == {"2026-01-01": 5.0}


def test_new_users_are_first_sessions_of_users_new_to_ga4(published):
    # New: S1 (u1), S2 (u2), S3 (u3), S6 (u5). u4's first touch (2025-12-01) precedes S5.
    assert kpi_series(published, "new_users", "day") == with_empty_days(
        {
            "2026-01-05": 2.0,
            "2026-01-06": 1.0,
            "2026-01-07": 0.0,  # u1 again
            "2026-01-08": 0.0,  # u4, known since December
            "2026-01-12": 1.0,  # u5 (S7 is u1 again)
        }
    )
    assert kpi_series(published, "new_users", "week") == {"2026-01-05": 3.0, "2026-01-12": 1.0}
    assert kpi_series(published, "new_users", "month") == {"2026-01-01": 4.0}


def test_pageviews_count_an_event_delivered_twice_once(published):
    # Page views per session: S1 1, S2 2, S3 1, S4 1, S5 2 (its 16:01 view delivered twice
    # counts once), S6 1, S7 2.
    assert kpi_series(published, "pageviews", "day") == with_empty_days(
        {
            "2026-01-05": 1 + 2,
            "2026-01-06": 1.0,
            "2026-01-07": 1.0,
            "2026-01-08": 2.0,
            "2026-01-12": 1 + 2,
        }
    )
    assert kpi_series(published, "pageviews", "week") == {
        "2026-01-05": 1 + 2 + 1 + 1 + 2,
        "2026-01-12": 3,
    }
    assert kpi_series(published, "pageviews", "month") == {"2026-01-01": 10.0}
    assert kpi_series(published, "pages_per_session", "week") == approx(
        {"2026-01-05": 7 / 5, "2026-01-12": 3 / 2}
    )
    assert kpi_series(published, "pages_per_session", "month") == approx({"2026-01-01": 10 / 7})


def test_average_session_duration_is_a_mean_per_grain(published):
    assert kpi_series(published, "avg_session_duration_s", "day") == approx(
        {
            "2026-01-05": (S1 + S2) / 2,
            "2026-01-06": S3,
            "2026-01-07": S4,
            "2026-01-08": S5,
            "2026-01-12": (S6 + S7) / 2,
        }
    )
    assert kpi_series(published, "avg_session_duration_s", "week") == approx(
        {"2026-01-05": (S1 + S2 + S3 + S4 + S5) / 5, "2026-01-12": (S6 + S7) / 2}
    )
    assert kpi_series(published, "avg_session_duration_s", "month") == approx(
        {"2026-01-01": (S1 + S2 + S3 + S4 + S5 + S6 + S7) / 7}
    )


def test_engagement_and_bounce_follow_the_ga4_rule(published):
    # Engaged: S1 (12 s), S2 (2 page views), S3 (key event), S5, S6, S7. S4 bounces.
    assert kpi_series(published, "engagement_rate", "day") == {
        "2026-01-05": 2 / 2,
        "2026-01-06": 1 / 1,
        "2026-01-07": 0 / 1,
        "2026-01-08": 1 / 1,
        "2026-01-12": 2 / 2,
    }
    assert kpi_series(published, "engagement_rate", "week") == approx(
        {"2026-01-05": 4 / 5, "2026-01-12": 2 / 2}
    )
    assert kpi_series(published, "engagement_rate", "month") == approx({"2026-01-01": 6 / 7})
    assert kpi_series(published, "bounce_rate", "day")["2026-01-07"] == 1.0
    assert kpi_series(published, "bounce_rate", "week") == approx(
        {"2026-01-05": 1 / 5, "2026-01-12": 0.0}
    )
    assert kpi_series(published, "bounce_rate", "month") == approx({"2026-01-01": 1 / 7})


def test_web_conversion_rate_counts_sessions_with_a_key_event(published):
    # Key events: S3 (generate_lead), S5 (purchase, twice: one session), S6 (purchase).
    assert kpi_series(published, "web_conversion_rate", "day") == {
        "2026-01-05": 0.0,
        "2026-01-06": 1.0,
        "2026-01-07": 0.0,
        "2026-01-08": 1.0,
        "2026-01-12": 1 / 2,
    }
    assert kpi_series(published, "web_conversion_rate", "week") == approx(
        {"2026-01-05": 2 / 5, "2026-01-12": 1 / 2}
    )
    assert kpi_series(published, "web_conversion_rate", "month") == approx({"2026-01-01": 3 / 7})


def test_a_transaction_logged_and_delivered_twice_counts_once(published):
    # T-100 (01-08): two purchase events, one of them delivered twice -> one transaction of
    # 120 EUR, not 2 or 3 and not 240 or 360. T-200 on 01-12.
    assert kpi_series(published, "transactions", "day") == {
        "2026-01-08": 1.0,
        "2026-01-09": 0.0,
        "2026-01-10": 0.0,
        "2026-01-11": 0.0,
        "2026-01-12": 1.0,
    }
    assert kpi_series(published, "transactions", "week") == {"2026-01-05": 1.0, "2026-01-12": 1.0}
    assert kpi_series(published, "transactions", "month") == {"2026-01-01": 2.0}
    assert kpi_series(published, "transaction_revenue", "week")["2026-01-05"] == 120.0
    assert kpi_series(published, "transaction_revenue", "day")["2026-01-08"] == 120.0


def test_transaction_revenue_is_in_the_reporting_currency(published):
    # T-200: 50 USD on 01-12 at the USD rate of 2026-01-09 (latest earlier rate), 0.92.
    assert kpi_series(published, "transaction_revenue", "week") == approx(
        {"2026-01-05": 120.0, "2026-01-12": 50 * USD_RATE_ON_01_12}
    )
    assert kpi_series(published, "transaction_revenue", "month") == approx(
        {"2026-01-01": 120 + 50 * USD_RATE_ON_01_12}
    )


def test_channel_slice_from_source_and_medium(published):
    month = "2026-01-01"
    assert kpi_slices(published, "sessions", "month", "channel") == {
        (month, "Organic Search"): 2.0,  # S1 google/organic, S7 bing/organic
        (month, "Email"): 1.0,  # S2 newsletter/email
        (month, "Paid Search"): 2.0,  # S3, S5 google/cpc
        (month, "Direct"): 1.0,  # S4, no source or medium
        (month, "Paid Social"): 1.0,  # S6 facebook/paid_social
    }
    # Organic Search: two sessions of one user (u1).
    assert kpi_series(published, "users", "month", "channel", "Organic Search") == {month: 1.0}
    assert kpi_series(published, "users", "month", "channel", "Paid Search") == {month: 2.0}
    assert kpi_series(published, "sessions", "week", "channel", "Organic Search") == {
        "2026-01-05": 1.0,
        "2026-01-12": 1.0,
    }
    assert kpi_series(published, "engagement_rate", "month", "channel", "Direct") == {month: 0.0}
    assert kpi_series(published, "bounce_rate", "month", "channel", "Direct") == {month: 1.0}
    assert kpi_series(published, "avg_session_duration_s", "month", "channel", "Paid Search") == {
        month: (S3 + S5) / 2
    }
    assert kpi_series(published, "web_conversion_rate", "month", "channel", "Organic Search") == {
        month: 0.0
    }
    assert kpi_series(published, "pageviews", "month", "channel", "Organic Search") == {
        month: 1 + 2
    }
    assert kpi_slices(published, "transactions", "month", "channel") == {
        (month, "Paid Search"): 1.0,
        (month, "Paid Social"): 1.0,
    }
    assert kpi_series(published, "transaction_revenue", "month", "channel", "Paid Search") == {
        month: 120.0
    }


@pytest.mark.parametrize("grain", ["week", "month"])
@pytest.mark.parametrize("dimension", ["all", "channel"])
def test_combined_kpis_equal_their_formula(published, grain, dimension):
    pageviews = kpi_slices(published, "pageviews", grain, dimension)
    sessions = kpi_slices(published, "sessions", grain, dimension)
    engagement = kpi_slices(published, "engagement_rate", grain, dimension)
    assert kpi_slices(published, "pages_per_session", grain, dimension) == {
        key: pytest.approx(pageviews[key] / sessions[key]) for key in sessions
    }
    assert kpi_slices(published, "bounce_rate", grain, dimension) == {
        key: pytest.approx(1 - rate) for key, rate in engagement.items()
    }

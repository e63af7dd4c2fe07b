"""The service KPIs through the whole pipeline, on a hand-made fixture (tests/fixtures/kpi_service).

Every expected value is worked out by hand from the fixture files below. Reporting time zone
Europe/Paris: UTC+1 in January and February 2026. ISO weeks start on Monday. The figures are
as of 2026-02-17 (the latest extract date of the fixture).

The fixture's story (agent 42, admin 43, requester 90xx of ticket x; every ticket in group 7):

  ticket created (UTC)  Paris date priority channel status   metrics: first reply cal/bus,
                                                            replies, reopens, first/full
                                                            resolution cal, solved_at (UTC)
  T1     01-12 09:00   01-12      high     email   solved   30/20, 1, 0, 120/120, 01-12 11:00
  T3     01-14 10:00   01-14      normal   email   open     (no ticket metrics at all)
  T4     01-20 08:00   01-20      high     chat    solved   12/12, 3, 1, 240/17280, 02-01 08:00
  T2     01-31 23:30   02-01 (!)  normal   web     open     60/30, 1, 0, -, -
  T5     02-03 14:00   02-03      normal   email   closed   120/120, 1, 0, 300/300, 02-03 19:00
  T6     02-10 09:00   02-10      low      web     pending  200/90, 1, 0, -, -
  T8     02-16 09:00   02-16      urgent   chat    solved   10/10, 2, 0, 60/60, 02-16 10:00
  T7     01-15 09:00, deleted by its later version of 01-16: never counted.

- T1 is solved with exactly one agent reply (one-touch); first solved 09:00 + 120 min = 11:00Z.
- T4 is first solved 08:00 + 240 min = 12:00Z on 01-20, reopened, and solved again on 02-01
  08:00Z (Paris 09:00): tickets_solved counts it on 01-20. Both its versions (01-20, 02-02)
  say solved: no version shows it reopened, so it is never in the backlog at a day's end.
- T3 has no ticket metrics: its first reply comes from its comments. 10:00 the requester's
  description, 10:10 an agent's PRIVATE note, 10:20 a requester follow-up (public), 10:45 the
  agent's public reply, 11:30 the admin's public reply. First reply = 10:45 - 10:00 = 45 min.
- Comments of T1 (requester 09:00, agent 09:30) and T2 (requester 23:30Z, agent 00:30Z on
  02-01) also give public agent replies; T4, T5, T6, T8 have no comments.
- Satisfaction: extract ratings T1 good (01-12 15:00Z), T4 bad (02-02 10:00Z), T8 'offered'
  (not a rating); T5 has no extract rating and its ticket says good (ticket updated_at
  02-04 09:00Z, the rating date); T6 unoffered.
- CRM feedback submissions: NPS 6, 7, 8, 9, 10 on 01-10..01-14 (10:00Z each), a CSAT answer
  (5, not NPS) on 01-14, NPS 10 at 01-31 23:10Z (Paris 02-01) and NPS 3 on 02-05.
"""

import pytest

from tests.conftest import kpi_series, nonzero, publish_fixture

pytestmark = pytest.mark.e2e

JAN, FEB = "2026-01-01", "2026-02-01"
# ISO weeks (Monday): 01-12..01-18, 01-19..01-25, 01-26..02-01, 02-02..02-08, 02-09..02-15,
# 02-16..02-22.
W0112, W0119, W0126, W0202, W0209, W0216 = (
    "2026-01-12",
    "2026-01-19",
    "2026-01-26",
    "2026-02-02",
    "2026-02-09",
    "2026-02-16",
)


def rows(published, kpi_id, grain, dimension="all", dimension_value="all"):
    """{period_start: (value, secondary_value)} of one KPI, grain and slice."""
    args = (published, kpi_id, grain, dimension, dimension_value)
    secondary = kpi_series(*args, column="secondary_value")
    return {period: (value, secondary[period]) for period, value in kpi_series(*args).items()}


def values(published, kpi_id, grain, dimension="all", dimension_value="all"):
    return kpi_series(published, kpi_id, grain, dimension, dimension_value)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return publish_fixture(tmp_path_factory, "kpi_service")


def test_tickets_created_by_paris_creation_date(published):
    # Jan: T1, T3, T4; Feb: T2 (01-31 23:30Z = 02-01 00:30 Paris), T5, T6, T8. T7 is deleted.
    assert nonzero(values(published, "tickets_created", "month")) == {JAN: 3.0, FEB: 4.0}
    days = values(published, "tickets_created", "day")
    assert days["2026-01-31"] == 0.0
    assert days["2026-02-01"] == 1.0
    assert days["2026-01-15"] == 0.0  # T7, deleted
    # Sunday 02-01 belongs to the ISO week of Monday 01-26 (although in February).
    assert nonzero(values(published, "tickets_created", "week")) == {
        W0112: 2.0,  # T1, T3
        W0119: 1.0,  # T4
        W0126: 1.0,  # T2
        W0202: 1.0,  # T5
        W0209: 1.0,  # T6
        W0216: 1.0,  # T8
    }
    assert values(published, "tickets_created", "month", "priority", "high") == {JAN: 2.0}
    assert values(published, "tickets_created", "month", "channel", "web") == {FEB: 2.0}
    assert values(published, "tickets_created", "month", "channel", "email") == {
        JAN: 2.0,  # T1, T3
        FEB: 1.0,  # T5
    }


def test_tickets_solved_by_first_resolution_date(published):
    # First resolution: T1 01-12, T4 01-20 (not its second resolution on 02-01), T5 02-03
    # (14:00Z + 300 min = 19:00Z, 20:00 Paris), T8 02-16; T5 is closed, which counts as solved.
    assert nonzero(values(published, "tickets_solved", "month")) == {JAN: 2.0, FEB: 2.0}
    assert nonzero(values(published, "tickets_solved", "week")) == {
        W0112: 1.0,
        W0119: 1.0,
        W0202: 1.0,
        W0216: 1.0,
    }
    days = values(published, "tickets_solved", "day")
    assert (days["2026-01-20"], days["2026-02-01"], days["2026-02-03"]) == (1.0, 0.0, 1.0)
    assert values(published, "tickets_solved", "month", "priority", "high") == {JAN: 2.0}
    assert values(published, "tickets_solved", "month", "channel", "chat") == {
        JAN: 1.0,  # T4
        FEB: 1.0,  # T8
    }


def test_resolution_rate_is_solved_over_created(published):
    assert values(published, "resolution_rate", "month") == {JAN: 2 / 3, FEB: 2 / 4}
    assert values(published, "resolution_rate", "month", "channel", "email") == {
        JAN: 1 / 2,  # T1 solved of T1, T3
        FEB: 1 / 1,  # T5
    }
    # The combination equals its formula from the mart's own values, at every period.
    solved = values(published, "tickets_solved", "week")
    created = values(published, "tickets_created", "week")
    rate = values(published, "resolution_rate", "week")
    assert rate == {week: solved[week] / created[week] for week in created}
    assert rate[W0126] == 0 / 1  # T2 created, nothing solved


def test_resolution_rate_of_a_slice_without_solved_tickets_is_zero(published):
    # Channel web, February: T2 and T6 created, none solved -> 0 / 2.
    assert values(published, "resolution_rate", "month", "channel", "web") == {FEB: 0 / 2}


def test_first_response_time_median_and_mean(published):
    # By creation date, calendar minutes; T3's 45 min come from its comments (the private note
    # at 10:10 and the requester's comment at 10:20 are not replies).
    # Jan: T1 30, T3 45, T4 12 -> median 30, mean (30 + 45 + 12) / 3.
    # Feb: T2 60, T5 120, T6 200, T8 10 -> median (60 + 120) / 2, mean (60+120+200+10) / 4.
    assert rows(published, "first_response_time_min", "month") == {
        JAN: (30.0, (30 + 45 + 12) / 3),
        FEB: ((60 + 120) / 2, (60 + 120 + 200 + 10) / 4),
    }
    assert values(published, "first_response_time_min", "week") == {
        W0112: (30 + 45) / 2,
        W0119: 12.0,
        W0126: 60.0,  # T2, created on Sunday 02-01 in Paris
        W0202: 120.0,
        W0209: 200.0,
        W0216: 10.0,
    }
    days = values(published, "first_response_time_min", "day")
    assert "2026-01-31" not in days
    assert (days["2026-01-14"], days["2026-02-01"]) == (45.0, 60.0)
    assert values(published, "first_response_time_min", "month", "priority", "normal") == {
        JAN: 45.0,  # T3
        FEB: (60 + 120) / 2,  # T2, T5
    }
    assert values(published, "first_response_time_min", "month", "channel", "web") == {
        FEB: (60 + 200) / 2  # T2, T6
    }


def test_first_response_time_in_business_minutes(published):
    # Metrics only: T3 (no metrics) has none. Jan: T1 20, T4 12. Feb: T2 30, T5 120, T6 90,
    # T8 10 -> median (30 + 90) / 2, mean (30 + 120 + 90 + 10) / 4.
    assert rows(published, "first_response_time_business_min", "month") == {
        JAN: ((20 + 12) / 2, (20 + 12) / 2),
        FEB: ((30 + 90) / 2, (30 + 120 + 90 + 10) / 4),
    }
    assert values(published, "first_response_time_business_min", "week")[W0112] == 20.0
    assert values(published, "first_response_time_business_min", "month", "channel", "email") == {
        JAN: 20.0,  # T1 (T3 has no business minutes)
        FEB: 120.0,  # T5
    }


def test_average_response_time_of_every_public_agent_reply(published):
    # By reply date: T1 09:30 - 09:00 = 30; T3 10:45 - 10:20 (the requester's latest earlier
    # comment) = 25 and 11:30 - 10:20 = 70; T2 00:30Z on 02-01 - 23:30Z = 60.
    assert values(published, "avg_response_time_min", "month") == {
        JAN: (30 + 25 + 70) / 3,
        FEB: 60.0,
    }
    days = values(published, "avg_response_time_min", "day")
    assert days == {"2026-01-12": 30.0, "2026-01-14": (25 + 70) / 2, "2026-02-01": 60.0}
    assert values(published, "avg_response_time_min", "month", "priority", "normal") == {
        JAN: (25 + 70) / 2,  # T3
        FEB: 60.0,  # T2
    }
    assert values(published, "avg_response_time_min", "month", "channel", "email") == {
        JAN: (30 + 25 + 70) / 3  # T1, T3
    }


def test_time_to_resolution_mean_and_median(published):
    # By first resolution date, full resolution minutes: Jan T1 120, T4 17280 (12 days, until
    # its second resolution); Feb T5 300, T8 60. With two values, median = mean.
    assert rows(published, "time_to_resolution_min", "month") == {
        JAN: ((120 + 17280) / 2, (120 + 17280) / 2),
        FEB: ((300 + 60) / 2, (300 + 60) / 2),
    }
    assert values(published, "time_to_resolution_min", "week") == {
        W0112: 120.0,
        W0119: 17280.0,
        W0202: 300.0,
        W0216: 60.0,
    }
    assert values(published, "time_to_resolution_min", "month", "priority", "high") == {
        JAN: (120 + 17280) / 2
    }


def test_backlog_at_period_end(published):
    # Open at the period's last day: created on or before it and neither solved nor closed as
    # its latest version updated by then says (a solve counts from the metrics' solve time).
    # T1, T5 (closed 02-04, solved 02-03 19:00Z), T8 leave on their creation day.
    # 01-31: T3 -> 1. T4's latest version by then (01-20) says solved: it is out, although
    # reopened later (the old figure, 2, kept it until its last solve on 02-01).
    # 02-28: T2, T3, T6 -> 3.
    assert values(published, "backlog", "month") == {JAN: 1.0, FEB: 3.0}
    assert values(published, "backlog", "week") == {
        W0112: 1.0,  # 01-18: T3
        W0119: 1.0,  # 01-25: T3 (T4 solved on 01-20; the old figure was 2)
        W0126: 2.0,  # 02-01: T3, T2 (created that day)
        W0202: 2.0,  # 02-08: T2, T3
        W0209: 3.0,  # 02-15: T2, T3, T6
        W0216: 3.0,  # 02-22: T2, T3, T6
    }
    days = values(published, "backlog", "day")
    assert (days["2026-01-31"], days["2026-02-01"], days["2026-02-17"]) == (1.0, 2.0, 3.0)
    assert values(published, "backlog", "month", "priority", "normal") == {
        JAN: 1.0,  # T3
        FEB: 2.0,  # T2, T3
    }
    assert values(published, "backlog", "month", "channel", "web") == {FEB: 2.0}  # T2, T6


def test_reopen_rate(published):
    # Solved in Jan: T1, T4 (reopened) -> 1 / 2. Feb: T5, T8, none reopened -> 0 / 2.
    assert values(published, "reopen_rate", "month") == {JAN: 1 / 2, FEB: 0 / 2}
    assert values(published, "reopen_rate", "week") == {
        W0112: 0 / 1,
        W0119: 1 / 1,
        W0202: 0 / 1,
        W0216: 0 / 1,
    }
    assert values(published, "reopen_rate", "month", "channel", "chat") == {
        JAN: 1 / 1,  # T4
        FEB: 0 / 1,  # T8
    }


def test_one_touch_resolution_rate(published):
    # Solved with exactly one agent reply: Jan T1 (T4 has 3) -> 1 / 2; Feb T5 (T8 has 2) -> 1 / 2.
    assert values(published, "one_touch_resolution_rate", "month") == {JAN: 1 / 2, FEB: 1 / 2}
    assert values(published, "one_touch_resolution_rate", "week") == {
        W0112: 1 / 1,
        W0119: 0 / 1,
        W0202: 1 / 1,
        W0216: 0 / 1,
    }
    assert values(published, "one_touch_resolution_rate", "month", "priority", "high") == {
        JAN: 1 / 2  # T1 of T1, T4
    }


def test_csat_counts_good_and_bad_only(published):
    # Jan: T1 good -> 100 * 1 / 1. Feb: T4 bad (02-02), T5 good (ticket fallback, 02-04);
    # T8's 'offered' is not a rating -> 100 * 1 / 2.
    assert values(published, "csat", "month") == {JAN: 100 * 1 / 1, FEB: 100 * 1 / 2}
    assert values(published, "csat", "week") == {W0112: 100.0, W0202: 100 * 1 / 2}
    assert values(published, "csat", "day") == {
        "2026-01-12": 100.0,
        "2026-02-02": 0.0,
        "2026-02-04": 100.0,
    }
    assert values(published, "csat", "month", "priority", "high") == {
        JAN: 100.0,  # T1 good
        FEB: 0.0,  # T4 bad
    }
    assert values(published, "csat", "month", "channel", "email") == {JAN: 100.0, FEB: 100.0}


def test_nps_boundaries(published):
    # Jan: 6 detractor, 7 and 8 passive, 9 and 10 promoters; the CSAT answer is not NPS.
    # 100 * (2 - 1) / 5. Feb: 10 (01-31 23:10Z = 02-01 Paris) and 3 -> 100 * (1 - 1) / 2.
    assert values(published, "nps", "month") == {JAN: 100 * (2 - 1) / 5, FEB: 100 * (1 - 1) / 2}
    assert values(published, "nps", "week") == {
        "2026-01-05": 100 * (0 - 1) / 2,  # 6 (Sat 01-10), 7 (Sun 01-11)
        W0112: 100 * (2 - 0) / 3,  # 8, 9, 10
        W0126: 100 * (1 - 0) / 1,  # 10 on Sunday 02-01 (Paris)
        W0202: 100 * (0 - 1) / 1,  # 3
    }

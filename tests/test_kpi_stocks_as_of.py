"""Stocks as of their date (issue 16): the issue's two hand-worked cases through the loader, the
dbt build and the publication, on a hand-made fixture (tests/fixtures/kpi_stocks).

A stock (an at_period_end KPI) counts its records as they stood on the period's last day: each
record's latest version updated by then, a deal open from its create date to its close date
(before its first extract too), a ticket out of the backlog from its solve. Europe/Paris is
UTC+1 in February and March 2026; the figures are as of 2026-03-06, the latest extract date.

Pipeline 'sales' as in tests/fixtures/kpi_sales: qualify (open, p 0.2, the entry stage),
proposal (open, p 0.6), signed (won), nogo (lost). Both deals are in EUR.

  deal 201  1000  created 02-16, first extracted on 03-04 already won (close date 03-02)
  deal 202   500  created 02-16, first extracted on 03-04 in proposal (updated 03-03)
  ticket 1        created 02-10 09:00Z; versions: solved (02-20 15:00Z extract), open again
                  (03-05 10:00Z), solved again (03-06 16:00Z). Its metrics: first resolution
                  after 14700 min = 02-20 14:00Z, last solve 03-06 16:00Z, 1 reopen.
"""

import pytest

from tests.conftest import kpi_series, publish_fixture

pytestmark = pytest.mark.e2e

FEB, MAR = "2026-02-01", "2026-03-01"


def approx(expected):
    return pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return publish_fixture(tmp_path_factory, "kpi_stocks")


def test_a_deal_first_extracted_won_after_the_month_is_in_its_open_pipeline(published):
    # End of February (02-28): 201 and 202, both created on 02-16 and not closed by then,
    # though no extract had shown them yet. 201's stage on 02-28 is unknown (first seen won):
    # weighted as the entry stage qualify, 1000 x 0.2; 202 as its first version's proposal,
    # 500 x 0.6. End of March (03-31, in progress): 202 only, 201 is won from 03-02.
    assert kpi_series(published, "open_deals", "month") == {FEB: 2.0, MAR: 1.0}
    assert kpi_series(published, "open_pipeline_value", "month") == approx(
        {FEB: 1000 + 500.0, MAR: 500.0}
    )
    assert kpi_series(published, "weighted_pipeline_value", "month") == approx(
        {FEB: 1000 * 0.2 + 500 * 0.6, MAR: 500 * 0.6}
    )
    daily = kpi_series(published, "open_deals", "day")
    assert "2026-02-15" not in daily  # no row before the stock's first day
    assert (daily["2026-02-16"], daily["2026-02-28"]) == (2.0, 2.0)
    assert (daily["2026-03-01"], daily["2026-03-02"]) == (2.0, 1.0)


def test_a_ticket_solved_at_the_month_end_and_reopened_later_is_not_in_its_backlog(published):
    # Open from its creation (02-10) to its first solve (02-20 14:00Z): in the backlog at the
    # end of 02-19, not of 02-20. On 02-28 its latest version (02-20) says solved: February's
    # backlog is 0, although it was reopened on 03-05 (the old figure, 1, ran the backlog to
    # its last solve). Reopened on 03-05: in the backlog at the end of that day; solved again
    # on 03-06: out of it, and of March's (03-31). Week of 03-02 (ends 03-08): 0.
    # No month has had a ticket in the backlog at its end: no month row (zero rows start at a
    # stock's first period with data).
    assert kpi_series(published, "backlog", "month") == {}
    daily = kpi_series(published, "backlog", "day")
    assert (daily["2026-02-19"], daily["2026-02-20"], daily["2026-02-28"]) == (1.0, 0.0, 0.0)
    assert (daily["2026-03-04"], daily["2026-03-05"], daily["2026-03-06"]) == (0.0, 1.0, 0.0)
    assert kpi_series(published, "backlog", "week") == {
        "2026-02-09": 1.0,
        "2026-02-16": 0.0,
        "2026-02-23": 0.0,
        "2026-03-02": 0.0,
    }
    # The slices of its version on that day.
    assert kpi_series(published, "backlog", "day", "priority", "high")["2026-03-05"] == 1.0

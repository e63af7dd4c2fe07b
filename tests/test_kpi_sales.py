"""The sales KPIs of the catalogue, proved on a hand-made CRM fixture (tests/fixtures/kpi_sales).

Every expected value is worked out by hand from the fixture files below. Reporting time zone
Europe/Paris (UTC+1 from January to March 2026), money in EUR at the FX rate of the deal's
date (its close date once closed, its create date while open). The figures are as of
2026-03-31, the latest extract date.

Pipeline 'sales' (pipelines.json): qualify (open, p 0.2), proposal (open, p 0.6),
contractsent labelled "Closed won - contract sent" but open with p 0.9, signed (closed, p 1:
won) and nogo (closed, p 0: lost). Owners: 501 and 503 in team Paris, 502 in team Lyon.
Companies: 9001 Acme FR, 9002 Beta DE, 9003 Gamma FR, 9004 Delta BE, 9005 Epsilon FR.
FX (spend/2026-03-31/fx_rates.csv): USD 0.85 from 01-02, 0.90 from 01-19, 0.95 from 01-21;
GBP 1.15 from 01-02, 1.17 from 02-19, 1.20 from 03-01.

Deals (dates in Paris; cycle = close date - create date in days):
  101 Acme     EUR 1000  owner 501  created 01-05, won 01-12                 cycle 7
  103 Gamma    USD 1000  owner 502  created 01-10, won 01-20 (no USD rate that
               day: 0.90 of 01-19) -> 1000 * 0.90 = 900                      cycle 10
  104 Delta    EUR  500  owner 501  qualify from 01-06, lost 01-26 (extract 02-10)
  105 Delta    EUR  800  owner 501  created 01-15 in contractsent: open, never won
  106 Acme     EUR 3000  owner 502  qualify 01-16 (extract 01-17), proposal 01-19 (extract
               01-20), won 02-09 (extract 02-10): open at January's end, Acme's 2nd won deal
                                                                             cycle 24
  102 Beta     EUR 2000  owner 502  qualify 01-19, won 2026-01-31T23:30Z = 02-01 00:30 in
               Paris: February revenue, and still open at the end of January   cycle 13
  107 Epsilon  EUR 1500  owner 503  created 02-02, won 02-16, recurring 250/month, contract
               end date 2026-03-20 (excluded: under contract until 03-19)      cycle 14
  110 Epsilon  EUR  600  owner 503  created 02-03, lost 02-25
  109 Gamma    GBP 1000  owner 502  qualify 02-20 (GBP 1.17 of 02-19 -> 1170), proposal 03-12
  108 Beta     EUR 4800  owner 502  created 02-23, won 03-10, recurring 400/month, no end
               (Beta's 2nd won deal)                                           cycle 15
A deal is open from its create date to its close date, also before its first extract: 101,
103, 107, 108 and 110 are first extracted already closed, so they are open from their create
date in an unknown stage, weighted as the pipeline's entry stage (qualify, p 0.2), at the
amount of their first version converted at the FX rate of their create date (103: 1000 USD *
0.85 of 01-10 = 850).
Activities: call 201 (501, 01-12), call 203 (archived: not counted), email 301 (501, 01-13),
call 202 (502, 2026-01-31T23:15Z = 02-01 in Paris), email 302 (502, 02-03), meeting 401
(501, 02-05, delivered twice: scheduled, then completed).
"""

import duckdb
import pytest

from tests.conftest import kpi_series, nonzero, publish_fixture

pytestmark = pytest.mark.e2e

JAN, FEB, MAR = "2026-01-01", "2026-02-01", "2026-03-01"


def approx(expected):
    return pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return publish_fixture(tmp_path_factory, "kpi_sales")


def test_revenue_by_paris_close_date_at_the_fx_rate_of_that_date(published):
    # January: 101 (1000) + 103 (1000 USD * 0.90). 102, won at 23:30 UTC on 01-31, is
    # February in Paris with 106 and 107. The contractsent deal (105) is open whatever its label.
    assert kpi_series(published, "revenue", "month") == approx(
        {JAN: 1000 + 1000 * 0.90, FEB: 2000 + 3000 + 1500, MAR: 4800.0}
    )
    assert nonzero(kpi_series(published, "revenue", "day")) == approx(
        {
            "2026-01-12": 1000.0,
            "2026-01-20": 1000 * 0.90,
            "2026-02-01": 2000.0,
            "2026-02-09": 3000.0,
            "2026-02-16": 1500.0,
            "2026-03-10": 4800.0,
        }
    )
    assert kpi_series(published, "revenue", "day")["2026-01-31"] == 0.0
    # ISO weeks: 02-01 is the Sunday of the week of Monday 01-26.
    assert nonzero(kpi_series(published, "revenue", "week")) == approx(
        {
            "2026-01-12": 1000.0,
            "2026-01-19": 900.0,
            "2026-01-26": 2000.0,
            "2026-02-09": 3000.0,
            "2026-02-16": 1500.0,
            "2026-03-09": 4800.0,
        }
    )
    assert kpi_series(published, "revenue", "quarter") == approx({JAN: 1900 + 6500 + 4800.0})
    assert kpi_series(published, "revenue", "month", "deal_currency", "USD") == approx({JAN: 900.0})


def test_revenue_by_owner_and_team(published):
    # Paris = owners 501 (101 in January) and 503 (107 in February); Lyon = owner 502.
    assert kpi_series(published, "revenue", "month", "team", "Paris") == approx(
        {JAN: 1000.0, FEB: 1500.0}
    )
    assert kpi_series(published, "revenue", "month", "team", "Lyon") == approx(
        {JAN: 900.0, FEB: 2000 + 3000.0, MAR: 4800.0}
    )
    assert kpi_series(published, "revenue", "month", "owner", "501") == approx({JAN: 1000.0})
    assert kpi_series(published, "revenue", "month", "owner", "503") == approx({FEB: 1500.0})
    assert nonzero(kpi_series(published, "revenue", "week", "team", "Lyon")) == approx(
        {"2026-01-19": 900.0, "2026-01-26": 2000.0, "2026-02-09": 3000.0, "2026-03-09": 4800.0}
    )


def test_revenue_growth_against_the_previous_period(published):
    # No revenue before January: no growth for January.
    monthly = kpi_series(published, "revenue_growth", "month")
    assert monthly[JAN] is None
    assert (monthly[FEB], monthly[MAR]) == approx(((6500 - 1900) / 1900, (4800 - 6500) / 6500))
    # Week of 01-26 against the week of 01-19: (2000 - 900) / 900; the week of 02-02 had
    # no revenue after 2000: -1; the week after it divides by zero: null.
    weekly = kpi_series(published, "revenue_growth", "week")
    assert weekly["2026-01-26"] == approx((2000 - 900) / 900)
    assert weekly["2026-02-02"] == approx((0 - 2000) / 2000)
    assert weekly["2026-02-09"] is None


def test_deals_won_win_rate_and_average_deal_size(published):
    # Closed in January: 101, 103 won, 104 lost; February: 102, 106, 107 won, 110 lost;
    # March: 108 won. 105 sits in a stage labelled "Closed won" that is open: not closed.
    assert kpi_series(published, "deals_won", "month") == {JAN: 2.0, FEB: 3.0, MAR: 1.0}
    assert kpi_series(published, "win_rate", "month") == approx({JAN: 2 / 3, FEB: 3 / 4, MAR: 1.0})
    assert kpi_series(published, "average_deal_size", "month") == approx(
        {JAN: 1900 / 2, FEB: 6500 / 3, MAR: 4800.0}
    )
    # Week of 01-26: 104 lost (01-26) and 102 won (02-01); week of 02-23: 110 lost only.
    assert kpi_series(published, "win_rate", "week") == approx(
        {
            "2026-01-12": 1.0,
            "2026-01-19": 1.0,
            "2026-01-26": 1 / 2,
            "2026-02-09": 1.0,
            "2026-02-16": 1.0,
            "2026-02-23": 0.0,
            "2026-03-09": 1.0,
        }
    )
    # Paris: 101 won and 104 lost in January, 107 won and 110 lost in February.
    assert kpi_series(published, "win_rate", "month", "team", "Paris") == approx(
        {JAN: 0.5, FEB: 0.5}
    )
    assert kpi_series(published, "win_rate", "month", "team", "Lyon") == approx(
        {JAN: 1.0, FEB: 1.0, MAR: 1.0}
    )
    assert kpi_series(published, "deals_won", "month", "owner", "502") == {
        JAN: 1.0,
        FEB: 2.0,
        MAR: 1.0,
    }
    assert kpi_series(published, "average_deal_size", "month", "team", "Lyon") == approx(
        {JAN: 900.0, FEB: (2000 + 3000) / 2, MAR: 4800.0}
    )


def test_average_deal_size_is_revenue_over_deals_won_in_the_mart(published):
    conn = duckdb.connect(str(published), read_only=True)
    try:
        combined = conn.execute(
            """
            select size.grain, size.period_start, size.dimension, size.dimension_value,
                size.value, revenue.value / won.value
            from kpi_values as size
            inner join kpi_values as revenue using (grain, period_start, dimension, dimension_value)
            inner join kpi_values as won using (grain, period_start, dimension, dimension_value)
            where size.kpi_id = 'average_deal_size' and revenue.kpi_id = 'revenue'
                and won.kpi_id = 'deals_won' and won.value > 0
            """
        ).fetchall()
    finally:
        conn.close()
    # 6 won deals: day, week, month, quarter and year rows for 'all', owner, team and more.
    assert len(combined) > 30
    for *identity, size, formula in combined:
        assert size == approx(formula), identity


def test_sales_cycle_mean_with_the_median_as_secondary_value(published):
    # January: 101 (7) and 103 (10); February: 102 (13), 106 (24), 107 (14); March: 108 (15).
    assert kpi_series(published, "sales_cycle_days", "month") == approx(
        {JAN: (7 + 10) / 2, FEB: (13 + 24 + 14) / 3, MAR: 15.0}
    )
    assert kpi_series(published, "sales_cycle_days", "month", column="secondary_value") == approx(
        {JAN: (7 + 10) / 2, FEB: 14.0, MAR: 15.0}
    )
    # The quarter's median is of the deals, [7, 10, 13, 14, 15, 24], not of monthly figures.
    assert kpi_series(published, "sales_cycle_days", "quarter") == approx(
        {JAN: (7 + 10 + 13 + 24 + 14 + 15) / 6}
    )
    assert kpi_series(published, "sales_cycle_days", "quarter", column="secondary_value") == approx(
        {JAN: (13 + 14) / 2}
    )
    assert kpi_series(published, "sales_cycle_days", "week")["2026-01-26"] == 13.0
    assert kpi_series(published, "sales_cycle_days", "month", "team", "Lyon") == approx(
        {JAN: 10.0, FEB: (13 + 24) / 2, MAR: 15.0}
    )


def test_open_pipeline_at_period_end_from_the_stage_history(published):
    # End of January (01-31 in Paris): 102 in qualify (2000, p 0.2), 105 in contractsent
    # (800, p 0.9), 106 in proposal (3000, p 0.6). End of February: 105, 109 in qualify
    # (1000 GBP at 1.17 of its create date = 1170), and 108 (4800), the case: created
    # on 02-23 and first extracted on 03-31 already won (on 03-10), it was open on 02-28, in
    # an unknown stage weighted as qualify (0.2). (The old figure, 2 deals and 1970, started
    # its open spell at its first version.) End of March: 109 has moved to proposal.
    assert kpi_series(published, "open_deals", "month") == {JAN: 3.0, FEB: 3.0, MAR: 2.0}
    assert kpi_series(published, "open_pipeline_value", "month") == approx(
        {JAN: 2000 + 800 + 3000.0, FEB: 800 + 1000 * 1.17 + 4800, MAR: 800 + 1000 * 1.17}
    )
    assert kpi_series(published, "weighted_pipeline_value", "month") == approx(
        {
            JAN: 2000 * 0.2 + 800 * 0.9 + 3000 * 0.6,
            FEB: 800 * 0.9 + 1170 * 0.2 + 4800 * 0.2,
            MAR: 800 * 0.9 + 1170 * 0.6,
        }
    )
    # 102 is won on 02-01 in Paris: open on the evening of 01-31, not on 02-01.
    daily = kpi_series(published, "open_pipeline_value", "day")
    assert daily["2026-01-31"] == approx(2000 + 800 + 3000.0)
    assert daily["2026-02-01"] == approx(800 + 3000.0)
    # Weeks end on Sunday. 01-18: 104 (500) and 106 (3000) in qualify, 105, and 103 (created
    # 01-10, first extracted won on 01-20: open before, 850 weighted as qualify; the old
    # figure, 3 deals, left it out). 01-25: 102 has joined, 106 is in proposal, 103 is won.
    # 02-01: 102 won, 104 lost (01-26).
    assert kpi_series(published, "open_deals", "week")["2026-01-12"] == 4.0
    weekly = kpi_series(published, "weighted_pipeline_value", "week")
    assert weekly["2026-01-12"] == approx(500 * 0.2 + 800 * 0.9 + 3000 * 0.2 + 850 * 0.2)
    assert weekly["2026-01-19"] == approx(2000 * 0.2 + 500 * 0.2 + 800 * 0.9 + 3000 * 0.6)
    assert weekly["2026-01-26"] == approx(800 * 0.9 + 3000 * 0.6)
    assert kpi_series(published, "open_pipeline_value", "week")["2026-01-19"] == approx(
        2000 + 500 + 800 + 3000.0
    )
    # Lyon (owner 502): 102 and 106 at the end of January, 109 and 108 at the end of
    # February, 109 at the end of March.
    assert kpi_series(published, "open_deals", "month", "team", "Lyon") == {
        JAN: 2.0,
        FEB: 2.0,
        MAR: 1.0,
    }
    assert kpi_series(published, "weighted_pipeline_value", "month", "owner", "502") == approx(
        {JAN: 2000 * 0.2 + 3000 * 0.6, FEB: 1170 * 0.2 + 4800 * 0.2, MAR: 1170 * 0.6}
    )


def test_new_customers_count_a_company_once_and_active_customers_a_year(published):
    # First won deals: Acme 01-12, Gamma 01-20, Beta 02-01, Epsilon 02-16. Acme's 106
    # (02-09) and Beta's 108 (03-10) are second won deals. Delta never wins.
    assert kpi_series(published, "new_customers", "month") == {JAN: 2.0, FEB: 2.0, MAR: 0.0}
    assert nonzero(kpi_series(published, "new_customers", "day")) == {
        "2026-01-12": 1.0,
        "2026-01-20": 1.0,
        "2026-02-01": 1.0,
        "2026-02-16": 1.0,
    }
    assert kpi_series(published, "new_customers", "week")["2026-02-09"] == 0.0
    # Zero rows for empty periods are company-wide only: Lyon has no March row.
    assert kpi_series(published, "new_customers", "month", "team", "Lyon") == {JAN: 1.0, FEB: 1.0}
    assert kpi_series(published, "active_customers", "month") == {JAN: 2.0, FEB: 4.0, MAR: 4.0}
    daily = kpi_series(published, "active_customers", "day")
    assert (daily["2026-01-31"], daily["2026-02-01"]) == (2.0, 3.0)
    assert kpi_series(published, "active_customers", "month", "country", "FR") == {
        JAN: 2.0,
        FEB: 3.0,
        MAR: 3.0,
    }
    assert kpi_series(
        published, "active_customers", "month", "region", "Europe (excl. France)"
    ) == {
        FEB: 1.0,
        MAR: 1.0,
    }
    # Retention: (active at end - new) / active at start.
    retention = kpi_series(published, "customer_retention_rate", "month")
    assert (retention[FEB], retention[MAR]) == approx(((4 - 2) / 2, (4 - 0) / 4))


def test_mrr_of_won_recurring_deals_under_contract_at_period_end(published):
    # 107: 250 from 02-16 until its contract end date 03-20 (excluded); 108: 400 from 03-10.
    assert kpi_series(published, "mrr", "month") == approx({FEB: 250.0, MAR: 400.0})
    daily = kpi_series(published, "mrr", "day")
    assert "2026-02-15" not in daily
    assert daily["2026-02-16"] == 250.0
    assert daily["2026-03-09"] == 250.0
    assert daily["2026-03-10"] == 250 + 400.0
    assert daily["2026-03-19"] == 250 + 400.0
    assert daily["2026-03-20"] == 400.0
    assert kpi_series(published, "mrr", "week") == approx(
        {
            "2026-02-16": 250.0,
            "2026-02-23": 250.0,
            "2026-03-02": 250.0,
            "2026-03-09": 250 + 400.0,
            "2026-03-16": 400.0,
            "2026-03-23": 400.0,
            "2026-03-30": 400.0,
        }
    )
    assert kpi_series(published, "mrr", "month", "team", "Paris") == approx({FEB: 250.0})
    assert kpi_series(published, "mrr", "month", "team", "Lyon") == approx({MAR: 400.0})


def test_sales_activities_calls_emails_and_meetings(published):
    # January: call 201, email 301 (call 203 is archived). February: call 202 (23:15 UTC on
    # 01-31 = 02-01 in Paris), email 302, meeting 401 counted once across its two versions.
    assert kpi_series(published, "sales_activities", "month") == {JAN: 2.0, FEB: 3.0, MAR: 0.0}
    assert nonzero(kpi_series(published, "sales_activities", "day")) == {
        "2026-01-12": 1.0,
        "2026-01-13": 1.0,
        "2026-02-01": 1.0,
        "2026-02-03": 1.0,
        "2026-02-05": 1.0,
    }
    assert nonzero(kpi_series(published, "sales_activities", "week")) == {
        "2026-01-12": 2.0,
        "2026-01-26": 1.0,
        "2026-02-02": 2.0,
    }
    assert kpi_series(published, "sales_activities", "month", "activity_type", "call") == {
        JAN: 1.0,
        FEB: 1.0,
    }
    assert kpi_series(published, "sales_activities", "month", "activity_type", "meeting") == {
        FEB: 1.0
    }
    assert kpi_series(published, "sales_activities", "month", "owner", "501") == {
        JAN: 2.0,
        FEB: 1.0,
    }
    assert kpi_series(published, "sales_activities", "month", "team", "Lyon") == {FEB: 2.0}


def test_pipeline_velocity_from_open_deals_and_trailing_90_day_inputs(published):
    # Trailing 90 days up to 01-31: 2 won (1900), 1 lost, cycles 7 and 10.
    # Up to 02-28: 5 won (1900 + 6500), 2 lost, cycles 7 + 10 + 13 + 24 + 14 = 68; 3 deals
    # open (105, 109 and 108, created in February and first extracted won in March).
    # Up to 03-31 (from 01-01): 6 won (8400 + 4800), 2 lost, cycles 68 + 15 = 83.
    assert kpi_series(published, "pipeline_velocity", "month") == approx(
        {
            JAN: 3 * (1900 / 2) * (2 / 3) / ((7 + 10) / 2),
            FEB: 3 * (8400 / 5) * (5 / 7) / (68 / 5),
            MAR: 2 * (13200 / 6) * (6 / 8) / (83 / 6),
        }
    )
    # Lyon at the end of March: 109 open; won 103 (900), 102, 106, 108, none lost.
    lyon = kpi_series(published, "pipeline_velocity", "month", "team", "Lyon")
    lyon_deal_size, lyon_cycle = (900 + 2000 + 3000 + 4800) / 4, (10 + 13 + 24 + 15) / 4
    assert lyon[MAR] == approx(1 * lyon_deal_size * 1.0 / lyon_cycle)
    conn = duckdb.connect(str(published), read_only=True)
    try:
        combined = conn.execute(
            """
            select v.grain, v.period_start, v.dimension, v.dimension_value, v.value,
                o.value * s.value * w.value / c.value
            from kpi_values as v
            inner join kpi_values as o using (grain, period_start, dimension, dimension_value)
            inner join kpi_values as s using (grain, period_start, dimension, dimension_value)
            inner join kpi_values as w using (grain, period_start, dimension, dimension_value)
            inner join kpi_values as c using (grain, period_start, dimension, dimension_value)
            where v.kpi_id = 'pipeline_velocity' and o.kpi_id = 'open_deals'
                and s.kpi_id = 'average_deal_size_90d' and w.kpi_id = 'win_rate_90d'
                and c.kpi_id = 'sales_cycle_days_90d' and v.grain in ('month', 'week')
            """
        ).fetchall()
    finally:
        conn.close()
    assert len(combined) > 20
    for *identity, velocity, formula in combined:
        assert velocity == approx(formula), identity

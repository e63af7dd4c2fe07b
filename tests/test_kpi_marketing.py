"""The marketing KPI family, worked out by hand on tests/fixtures/kpi_marketing.

The fixture's story (reporting time zone Europe/Paris: UTC+1 until 29 March, UTC+2 after):

Contacts (crm/2026-02-28, then new versions of 11 and 12 in crm/2026-04-10):
  id  source (group)             detail       country  lead   MQL    SQL    customer
  11  PAID_SEARCH (Paid Search)  brand        France   01-05  01-12  01-20  04-05 (lead + 90 d)
  12  PAID_SOCIAL (Paid Social)  retargeting  Belgium  01-06  01-14  -      04-07 (lead + 91 d)
  13  ORGANIC_SEARCH (Organic)   google       Germany  none   -      -      02-10
      (no lead date: created 01-31 23:30 UTC = 02-01 in Paris, its lead date)
  14  EMAIL_MARKETING (Email)    newsletter   France   02-03  02-05  02-16  -
  15  no source (Unassigned)     -            -        01-20  02-02  -      -
  16  PAID_SEARCH (Paid Search)  generic      Germany  02-10  02-11  02-12  02-20
Companies 101 Alpha (France), 102 Beta (Belgium), 103 Gamma (Germany). Won deals:
  201 1000 EUR, 01-20, company 101, contact 11 (paid)
  202  600 USD, 01-06, company 102, contact 12 (paid); USD of 01-06 -> 0.90 (rate of 01-05)
  203  400 EUR, 02-15, company 101, contact 11 (paid; 101's second won deal)
  204 2000 EUR, 02-10, company 103, contact 13 (organic: not paid-channel revenue)
  205  800 EUR, lost (02-18), company 103.
FX (EUR per USD): 01-05 0.90, 01-07 0.92, 02-13 0.94; a missing day takes the latest
earlier rate. Spend: 01-05 Paid Search brand 300 EUR, 01-06 Paid Social retargeting
200 USD, 01-07 same 100 USD, 02-10 Paid Search generic 500 EUR, 02-16 Paid Social
retargeting 150 USD, 02-20 OFFLINE trade fair 250 EUR. Sales costs: 2026-01 Inside Sales
1000 EUR, 2026-02 Inside Sales 1200 EUR and Field Sales 500 USD (rate of 02-01: 0.92).
E-mails: campaign 901 "January newsletter" sent 01-15 to anna (contact 11: three OPENs,
one CLICK), bruno (12: one OPEN), david (14: BOUNCE, never delivered), felix (16:
delivered only); campaign 902 "February promo" sent 02-10 to anna (OPEN, two CLICKs),
david and felix (delivered only) and zoe (no contact: two OPENs).

The latest extract is 2026-04-10 (the as-of date): periods run up to April 2026, and
additive KPIs get zero company-wide rows for empty periods from their first one on.
"""

import pytest

from tests.conftest import kpi_series, nonzero, publish_fixture

pytestmark = pytest.mark.e2e

JAN, FEB, MAR, APR = "2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"
Q1, Q2 = "2026-01-01", "2026-04-01"

# Spend in EUR per row, at the USD rate of its date.
SPEND_0105 = 300.0
SPEND_0106 = 200 * 0.90  # no USD rate on 01-06: the 01-05 rate
SPEND_0107 = 100 * 0.92
SPEND_0210 = 500.0
SPEND_0216 = 150 * 0.94  # no rate on 02-16: 02-13's 0.94, not 01-07's 0.92
SPEND_0220 = 250.0
SPEND_JAN = SPEND_0105 + SPEND_0106 + SPEND_0107  # 572
SPEND_FEB = SPEND_0210 + SPEND_0216 + SPEND_0220  # 891
SALES_COSTS_JAN = 1000.0
SALES_COSTS_FEB = 1200 + 500 * 0.92  # 1660
LEADS_JAN, LEADS_FEB = 3, 3  # 11, 12, 15 | 13, 14, 16
NEW_CUSTOMERS_JAN, NEW_CUSTOMERS_FEB = 2, 1  # companies 101, 102 | 103
PAID_REVENUE_JAN = 1000 + 600 * 0.90  # deals 201 and 202: 1540
PAID_REVENUE_FEB = 400.0  # deal 203 (204 is organic, 205 lost)
# CLV = revenue of the 365 days up to the period's end / companies x margin 1.0 x 3 years
CLV_JAN = (1000 + 600 * 0.90) / 2 * 1.0 * 3  # deals 201, 202: 2310
CLV_FEB = (1000 + 600 * 0.90 + 400 + 2000) / 3 * 1.0 * 3  # + 203, 204: 3940


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return publish_fixture(tmp_path_factory, "kpi_marketing")


def test_leads_by_lead_date_else_create_date(published):
    # Contact 13 has no lead date: its create date, 01-31 23:30 UTC = 02-01 in Paris.
    assert kpi_series(published, "leads", "month") == {JAN: 3, FEB: 3, MAR: 0, APR: 0}
    assert nonzero(kpi_series(published, "leads", "day")) == {
        "2026-01-05": 1,  # 11
        "2026-01-06": 1,  # 12
        "2026-01-20": 1,  # 15
        "2026-02-01": 1,  # 13
        "2026-02-03": 1,  # 14
        "2026-02-10": 1,  # 16
    }
    # ISO weeks: 13 (02-01, a Sunday) falls in the week of Monday 01-26, not in February's.
    assert nonzero(kpi_series(published, "leads", "week")) == {
        "2026-01-05": 1 + 1,
        "2026-01-19": 1,
        "2026-01-26": 1,
        "2026-02-02": 1,
        "2026-02-09": 1,
    }
    # Channel slice: the original source through seeds/channel_groups.csv; none = Unassigned.
    assert kpi_series(published, "leads", "month", "channel", "Paid Search") == {JAN: 1, FEB: 1}
    assert kpi_series(published, "leads", "month", "channel", "Paid Social") == {JAN: 1}
    assert kpi_series(published, "leads", "month", "channel", "Organic Search") == {FEB: 1}
    assert kpi_series(published, "leads", "month", "channel", "Email") == {FEB: 1}
    assert kpi_series(published, "leads", "month", "channel", "Unassigned") == {JAN: 1}
    assert kpi_series(published, "leads", "month", "campaign", "brand") == {JAN: 1}


def test_mqls_sqls_and_their_rate_are_period_flows(published):
    assert kpi_series(published, "mqls", "month") == {JAN: 1 + 1, FEB: 1 + 1 + 1, MAR: 0, APR: 0}
    assert kpi_series(published, "sqls", "month") == {JAN: 1, FEB: 1 + 1, MAR: 0, APR: 0}
    assert kpi_series(published, "mql_to_sql_rate", "month") == pytest.approx(
        {JAN: 1 / 2, FEB: 2 / 3, MAR: None, APR: None}  # 0 / 0 is no rate
    )
    # Weeks: MQLs 01-12 (11, 12), 02-02 (15, 14), 02-09 (16); SQLs 01-19 (11), 02-09 (16),
    # 02-16 (14). A week with SQLs and no MQL has no rate.
    weekly = kpi_series(published, "mql_to_sql_rate", "week")
    assert weekly["2026-02-09"] == 1 / 1
    assert weekly["2026-01-19"] is None and weekly["2026-02-16"] is None
    assert kpi_series(published, "mql_to_sql_rate", "month", "channel", "Paid Search") == {
        JAN: 1 / 1,  # 11
        FEB: 1 / 1,  # 16
    }


def test_new_customer_contacts_and_lead_to_customer_rate(published):
    # 13 on 02-10, 16 on 02-20; 11 on 04-05 and 12 on 04-07 (their April versions).
    assert kpi_series(published, "new_customer_contacts", "month") == {FEB: 2, MAR: 0, APR: 2}
    assert nonzero(kpi_series(published, "new_customer_contacts", "day")) == {
        "2026-02-10": 1,
        "2026-02-20": 1,
        "2026-04-05": 1,
        "2026-04-07": 1,
    }
    assert kpi_series(published, "lead_to_customer_rate", "month") == pytest.approx(
        {FEB: 2 / LEADS_FEB, MAR: None, APR: None}  # March 0 / 0, April 2 / 0
    )
    assert kpi_series(published, "lead_to_customer_rate", "month", "channel", "Paid Search") == {
        FEB: 1 / 1,  # 16 became a customer, 16 was the Paid Search lead
        APR: None,  # 11 became a customer, no Paid Search lead in April
    }


def test_lead_conversion_rate_90d_is_a_cohort_of_the_lead_period(published):
    # January leads: 11 (customer 90 days later: counts), 12 (91 days: does not), 15 (never).
    # February leads: 13 (9 days), 16 (10 days) count; 14 does not.
    assert kpi_series(published, "lead_conversion_rate_90d", "month") == pytest.approx(
        {JAN: 1 / 3, FEB: 2 / 3}
    )
    assert kpi_series(published, "lead_conversion_rate_90d", "day") == {
        "2026-01-05": 1 / 1,  # 11: 01-05 + 90 days = 04-05
        "2026-01-06": 0 / 1,  # 12: 01-06 + 91 days = 04-07
        "2026-01-20": 0 / 1,
        "2026-02-01": 1 / 1,
        "2026-02-03": 0 / 1,
        "2026-02-10": 1 / 1,
    }
    assert kpi_series(published, "lead_conversion_rate_90d", "month", "channel", "Paid Social") == {
        JAN: 0 / 1
    }
    assert kpi_series(published, "lead_conversion_rate_90d", "month", "country", "Germany") == {
        FEB: 2 / 2  # 13 and 16
    }


def test_marketing_spend_at_the_fx_rate_of_the_spend_date(published):
    assert kpi_series(published, "marketing_spend", "month") == pytest.approx(
        {JAN: 300 + 200 * 0.90 + 100 * 0.92, FEB: 500 + 150 * 0.94 + 250, MAR: 0, APR: 0}
    )
    assert nonzero(kpi_series(published, "marketing_spend", "day")) == pytest.approx(
        {
            "2026-01-05": SPEND_0105,
            "2026-01-06": SPEND_0106,
            "2026-01-07": SPEND_0107,
            "2026-02-10": SPEND_0210,
            "2026-02-16": SPEND_0216,
            "2026-02-20": SPEND_0220,
        }
    )
    assert nonzero(kpi_series(published, "marketing_spend", "week")) == pytest.approx(
        {"2026-01-05": SPEND_JAN, "2026-02-09": SPEND_0210, "2026-02-16": SPEND_0216 + SPEND_0220}
    )
    assert kpi_series(
        published, "marketing_spend", "month", "channel", "Paid Social"
    ) == pytest.approx({JAN: SPEND_0106 + SPEND_0107, FEB: SPEND_0216})
    assert kpi_series(published, "marketing_spend", "month", "channel", "Offline") == {FEB: 250.0}
    assert kpi_series(published, "marketing_spend", "month", "campaign", "brand") == {JAN: 300.0}


def test_cost_per_lead(published):
    assert kpi_series(published, "cost_per_lead", "month") == pytest.approx(
        {JAN: SPEND_JAN / LEADS_JAN, FEB: SPEND_FEB / LEADS_FEB, MAR: None, APR: None}
    )
    weekly = kpi_series(published, "cost_per_lead", "week")
    assert weekly["2026-01-05"] == pytest.approx(SPEND_JAN / 2)  # leads 11 and 12
    assert weekly["2026-02-09"] == pytest.approx(SPEND_0210 / 1)  # lead 16
    assert weekly["2026-02-16"] is None  # spend, but no lead that week
    assert kpi_series(
        published, "cost_per_lead", "month", "channel", "Paid Search"
    ) == pytest.approx({JAN: 300 / 1, FEB: 500 / 1})
    # The campaign slice matches the spend's campaign to the contacts' source detail.
    assert kpi_series(
        published, "cost_per_lead", "month", "campaign", "retargeting"
    ) == pytest.approx({JAN: (SPEND_0106 + SPEND_0107) / 1, FEB: None})


def test_sales_costs_acquisition_costs_and_cac_by_month(published):
    assert kpi_series(published, "sales_costs", "month") == pytest.approx(
        {JAN: 1000, FEB: 1200 + 500 * 0.92, MAR: 0, APR: 0}  # USD on 02-01: 01-07's 0.92
    )
    assert kpi_series(published, "sales_costs", "month", "team", "Field Sales") == pytest.approx(
        {FEB: 500 * 0.92}
    )
    assert kpi_series(published, "sales_costs", "day") == {}  # monthly costs: month and longer only
    assert kpi_series(published, "acquisition_costs", "month") == pytest.approx(
        {JAN: SPEND_JAN + SALES_COSTS_JAN, FEB: SPEND_FEB + SALES_COSTS_FEB, MAR: 0, APR: 0}
    )
    assert kpi_series(published, "cac", "month") == pytest.approx(
        {
            JAN: (SPEND_JAN + SALES_COSTS_JAN) / NEW_CUSTOMERS_JAN,  # 1572 / 2
            FEB: (SPEND_FEB + SALES_COSTS_FEB) / NEW_CUSTOMERS_FEB,  # 2551 / 1
            MAR: None,
            APR: None,
        }
    )
    assert kpi_series(published, "cac", "quarter") == pytest.approx(
        {
            Q1: (SPEND_JAN + SPEND_FEB + SALES_COSTS_JAN + SALES_COSTS_FEB)
            / (NEW_CUSTOMERS_JAN + NEW_CUSTOMERS_FEB),
            Q2: None,
        }
    )
    assert kpi_series(published, "cac", "week") == {}


def test_paid_channel_revenue_and_marketing_roi(published):
    assert kpi_series(published, "paid_channel_revenue", "month") == pytest.approx(
        {JAN: PAID_REVENUE_JAN, FEB: PAID_REVENUE_FEB, MAR: 0, APR: 0}
    )
    assert nonzero(kpi_series(published, "paid_channel_revenue", "day")) == pytest.approx(
        {"2026-01-06": 600 * 0.90, "2026-01-20": 1000, "2026-02-15": 400}
    )
    assert kpi_series(published, "paid_channel_revenue", "month", "channel", "Paid Search") == {
        JAN: 1000.0,
        FEB: 400.0,
    }
    assert kpi_series(published, "marketing_roi", "month") == pytest.approx(
        {
            JAN: (PAID_REVENUE_JAN - SPEND_JAN) / SPEND_JAN,
            FEB: (PAID_REVENUE_FEB - SPEND_FEB) / SPEND_FEB,
            MAR: None,
            APR: None,
        }
    )
    assert kpi_series(
        published, "marketing_roi", "month", "channel", "Paid Search"
    ) == pytest.approx({JAN: (1000 - 300) / 300, FEB: (400 - 500) / 500})
    assert kpi_series(
        published, "marketing_roi", "month", "channel", "Paid Social"
    ) == pytest.approx(
        {JAN: (600 * 0.90 - SPEND_0106 - SPEND_0107) / (SPEND_0106 + SPEND_0107), FEB: -1.0}
    )
    assert kpi_series(published, "marketing_roi", "month", "channel", "Offline") == {FEB: -1.0}
    weekly = kpi_series(published, "marketing_roi", "week")
    assert weekly["2026-01-05"] == pytest.approx((600 * 0.90 - SPEND_JAN) / SPEND_JAN)


def test_customer_lifetime_value_over_the_365_days_to_the_period_end(published):
    assert kpi_series(published, "customer_lifetime_value", "month") == pytest.approx(
        {JAN: CLV_JAN, FEB: CLV_FEB, MAR: CLV_FEB, APR: CLV_FEB}
    )
    daily = kpi_series(published, "customer_lifetime_value", "day")
    assert min(daily) == "2026-01-06"
    assert daily["2026-01-19"] == pytest.approx(600 * 0.90 * 3)  # deal 202 only
    assert daily["2026-01-20"] == pytest.approx(CLV_JAN)
    assert daily["2026-02-10"] == pytest.approx((1000 + 600 * 0.90 + 2000) / 3 * 3)
    assert daily["2026-04-10"] == pytest.approx(CLV_FEB)
    assert kpi_series(published, "customer_lifetime_value", "month", "country", "France") == (
        pytest.approx({JAN: 1000 * 3, FEB: (1000 + 400) * 3, MAR: 1400 * 3, APR: 1400 * 3})
    )
    assert kpi_series(published, "customer_lifetime_value", "month", "country", "Germany") == (
        pytest.approx({FEB: 2000 * 3, MAR: 2000 * 3, APR: 2000 * 3})
    )


def test_ltv_to_cac(published):
    assert kpi_series(published, "ltv_to_cac", "month") == pytest.approx(
        {
            JAN: CLV_JAN / ((SPEND_JAN + SALES_COSTS_JAN) / NEW_CUSTOMERS_JAN),  # 2310 / 786
            FEB: CLV_FEB / ((SPEND_FEB + SALES_COSTS_FEB) / NEW_CUSTOMERS_FEB),  # 3940 / 2551
            MAR: None,
            APR: None,
        }
    )


def test_email_rates_count_unique_opens_and_clicks_of_delivered_emails(published):
    # January: delivered to anna, bruno, felix (david bounced); opened by anna (three opens
    # count once) and bruno; clicked by anna. February: delivered to anna, david, felix,
    # zoe; opened by anna and zoe (twice); clicked by anna (twice).
    assert kpi_series(published, "email_open_rate", "month") == pytest.approx(
        {JAN: 2 / 3, FEB: 2 / 4}
    )
    assert kpi_series(published, "email_click_rate", "month") == pytest.approx(
        {JAN: 1 / 3, FEB: 1 / 4}
    )
    assert kpi_series(published, "email_open_rate", "day") == pytest.approx(
        {"2026-01-15": 2 / 3, "2026-02-10": 2 / 4}
    )
    assert kpi_series(published, "email_click_rate", "week") == pytest.approx(
        {"2026-01-12": 1 / 3, "2026-02-09": 1 / 4}
    )
    assert kpi_series(published, "email_open_rate", "month", "country", "France") == {
        JAN: 1 / 1,  # anna (david's bounced email is not delivered)
        FEB: 1 / 2,  # anna, david
    }
    assert kpi_series(published, "email_open_rate", "month", "country", "Germany") == {
        JAN: 0 / 1,
        FEB: 0 / 1,
    }
    assert kpi_series(published, "email_open_rate", "month", "country", "(not set)") == {FEB: 1 / 1}
    assert kpi_series(published, "email_open_rate", "month", "campaign", "January newsletter") == (
        pytest.approx({JAN: 2 / 3})
    )


def test_combined_kpis_equal_their_formulas_over_the_mart(published):
    def month(kpi_id):
        return kpi_series(published, kpi_id, "month")

    spend, leads = month("marketing_spend"), month("leads")
    mqls, sqls = month("mqls"), month("sqls")
    sales_costs, new_customers = month("sales_costs"), month("new_customers")
    paid_revenue, clv = month("paid_channel_revenue"), month("customer_lifetime_value")
    cac = month("cac")
    for period in (JAN, FEB):
        assert month("cost_per_lead")[period] == pytest.approx(spend[period] / leads[period])
        assert month("mql_to_sql_rate")[period] == pytest.approx(sqls[period] / mqls[period])
        assert month("acquisition_costs")[period] == pytest.approx(
            spend[period] + sales_costs[period]
        )
        assert cac[period] == pytest.approx(
            month("acquisition_costs")[period] / new_customers[period]
        )
        assert month("marketing_roi")[period] == pytest.approx(
            (paid_revenue[period] - spend[period]) / spend[period]
        )
        assert month("ltv_to_cac")[period] == pytest.approx(clv[period] / cac[period])
    assert month("lead_to_customer_rate")[FEB] == pytest.approx(
        month("new_customer_contacts")[FEB] / leads[FEB]
    )

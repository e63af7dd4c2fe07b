"""Restatements and the publication history on a real build: tests/fixtures/landing_small loaded
by the project's loader, built by dbt and published with a Recording (as the published_mart
asset does), then a day of corrections, then everything ingested and built again from nothing.

Day 1 (as of 2026-02-02, January complete): deal 1 won on 5 January, for 1,200.00 EUR in its
latest version (crm/2026-01-07, after 1,000.00 on 2026-01-05). Beside the fixture's files: deal
6, won on 15 December for 1,000.00 EUR (appended to crm/2026-01-05/deals.jsonl); owner 501, of
every deal, in team North (crm/2026-01-05/owners.jsonl); a GBP rate of 1.18 from 15 January
(appended to spend/2026-01-05/fx_rates.csv) and 100.00 GBP of marketing spend on 16 January
(spend/2026-01-05/marketing_spend.csv).
Day 2 (2026-02-03): deal 1 delivered again with 1,500.00 (a correction of a closed month), and
deal 6 with 800.00;
ticket 90, created on 20 January, delivered for the first time (a late record), and ticket 4,
created on 2 February, again with another priority; owner 501 moved to team South; the GBP
rate of 15 January corrected to 1.20, and the USD rate of 5 January to 0.91 (no deal converts
at it: deal 2 closed on 7 January, at that day's rate).
Day 3: the warehouse deleted, every file ingested again and every model built from nothing.
"""

import json
import shutil
from datetime import UTC, date, datetime

import duckdb
import pytest

from boussole.history import Recording
from boussole.ingestion.contracts import SOURCES, extract_dates, landed_files
from boussole.ingestion.loader import latest_extract_date, load_files
from boussole.publication import publish_marts
from boussole.restatements import report
from boussole.settings import Settings
from tests.conftest import FIXTURE_SETTINGS, FIXTURES, run_dbt

DAYS = {
    "day 1": datetime(2026, 2, 2, 7, tzinfo=UTC),
    "day 2": datetime(2026, 2, 3, 7, tzinfo=UTC),
    "day 3": datetime(2026, 2, 4, 7, tzinfo=UTC),
}
CORRECTION = "crm/2026-02-03/deals.jsonl"
LATE_TICKET = "support/2026-02-03/tickets.jsonl"
OWNER_MOVED = "crm/2026-02-03/owners.jsonl"
RATES_CORRECTED = "spend/2026-02-03/fx_rates.csv"


def deal_1_corrected() -> dict:
    """Deal 1 as first delivered (crm/2026-01-05), its amount 1,500.00, updated on 3 February."""
    first = json.loads(
        (FIXTURES / "landing_small/crm/2026-01-05/deals.jsonl").read_text().splitlines()[0]
    )
    assert first["id"] == "1" and first["properties"]["amount"] == "1000.00"
    first["properties"]["amount"] = "1500.00"
    first["updatedAt"] = "2026-02-03T08:00:00Z"
    return first


DEAL_6 = {
    "id": "6",
    "properties": {
        "dealname": "Deal 6",
        "amount": "1000.00",
        "deal_currency_code": "EUR",
        "dealstage": "closedwon",
        "pipeline": "default",
        "createdate": "2025-12-01T09:00:00Z",
        "closedate": "2025-12-15T10:00:00Z",
        "hubspot_owner_id": "501",
        "product_line": "Services",
    },
    "createdAt": "2025-12-01T09:00:00Z",
    "updatedAt": "2025-12-15T10:00:00Z",
    "archived": False,
}


def _owner_501(team: str, updated_at: str) -> dict:
    return {
        "id": "501",
        "email": "rep.501@boussole-test.fr",
        "firstName": "Rep",
        "lastName": "501",
        "teams": [{"id": f"t-{team.lower()}", "name": team, "primary": True}],
        "createdAt": "2025-01-01T09:00:00Z",
        "updatedAt": updated_at,
        "archived": False,
    }


LATE = {
    "id": 90,
    "created_at": "2026-01-20T09:00:00Z",
    "updated_at": "2026-02-03T06:00:00Z",
    "status": "open",
    "priority": "normal",
    "type": "question",
    "via": {"channel": "email"},
    "requester_id": 9090,
    "assignee_id": 42,
    "group_id": 7,
    "subject": "Ticket 90",
    "tags": [],
    "satisfaction_rating": {"score": "unoffered"},
}


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """The data folder after the three publications, and the published mart after each."""
    root = tmp_path_factory.mktemp("restatements")
    # Named as the fixture, whose plausible-date settings the loader takes from its name.
    landing = root / "incoming" / "landing_small"
    shutil.copytree(FIXTURES / "landing_small", landing)
    with (landing / "crm/2026-01-05/deals.jsonl").open("a") as deals:
        deals.write(json.dumps(DEAL_6) + "\n")
    (landing / "crm/2026-01-05/owners.jsonl").write_text(
        json.dumps(_owner_501("North", "2025-01-01T09:00:00Z")) + "\n"
    )
    with (landing / "spend/2026-01-05/fx_rates.csv").open("a") as rates:
        rates.write("2026-01-15,GBP,1.18\n")
    (landing / "spend/2026-01-05/marketing_spend.csv").write_text(
        "date,channel,campaign,spend,currency\n2026-01-16,PAID_SEARCH,Marque FR,100.00,GBP\n"
    )
    warehouse = root / "data" / "build" / "warehouse.duckdb"
    published = root / "data" / "published" / "boussole.duckdb"
    history = root / "data" / "history" / "publications.duckdb"
    snapshots = {}

    def build_and_publish(day: str):
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            as_of = latest_extract_date(conn)
        target = root / "target" / day.replace(" ", "_")
        built = run_dbt(
            # Models and seeds: their tests are not what this module checks.
            *("build", "--exclude", "resource_type:test", "resource_type:unit_test"),
            warehouse=warehouse,
            target=target,
            pii_key="test-key-for-boussole-tests",
            as_of_date=as_of,
        )
        assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-2000:]
        # The state the pipeline keeps after a build: the manifest restatements are traced with.
        (warehouse.parent / "dbt_state").mkdir(exist_ok=True)
        shutil.copy(target / "manifest.json", warehouse.parent / "dbt_state" / "manifest.json")
        mart = publish_marts(warehouse, published, Recording(history, day, False, DAYS[day]))
        snapshots[day] = root / f"{day}.duckdb"
        shutil.copy(published, snapshots[day])
        return mart

    load_landing(warehouse, landing)
    build_and_publish("day 1")

    deal_6_corrected = json.loads(json.dumps(DEAL_6))
    deal_6_corrected["properties"]["amount"] = "800.00"
    deal_6_corrected["updatedAt"] = "2026-02-03T08:00:00Z"
    ticket_4 = json.loads((landing / "support/2026-02-02/tickets.jsonl").read_text())
    assert ticket_4["id"] == 4 and ticket_4["created_at"] == "2026-02-02T10:00:00Z"
    ticket_4.update(priority="high", updated_at="2026-02-03T06:30:00Z")
    for path, records in (
        (CORRECTION, [deal_1_corrected(), deal_6_corrected]),
        (LATE_TICKET, [LATE, ticket_4]),
        (OWNER_MOVED, [_owner_501("South", "2026-02-03T08:00:00Z")]),
    ):
        (landing / path).parent.mkdir(parents=True, exist_ok=True)
        (landing / path).write_text("".join(json.dumps(record) + "\n" for record in records))
    (landing / RATES_CORRECTED).parent.mkdir(parents=True, exist_ok=True)
    (landing / RATES_CORRECTED).write_text(
        "date,currency,rate_to_reporting\n2026-01-05,USD,0.91\n2026-01-15,GBP,1.20\n"
    )
    load_landing(warehouse, landing, extract_date=date(2026, 2, 3))
    build_and_publish("day 2")

    shutil.rmtree(warehouse.parent)
    load_landing(warehouse, landing)
    build_and_publish("day 3")
    return published, history, snapshots


def load_landing(warehouse, landing, extract_date=None):
    """conftest's load_landing, but landing_small holds an empty gzip (a failed delivery)."""
    window = Settings.from_env(FIXTURE_SETTINGS["landing_small"]).plausible_dates
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as conn:
        for day in [extract_date] if extract_date else extract_dates(landing):
            for source in SOURCES:
                load_files(conn, landed_files(landing, source, day)[0], landing, window)


def query(path, sql, params=()):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_deal_amount_corrected_for_a_closed_month_is_one_restatement_naming_the_deal_and_file(
    days,
):
    published, _, _ = days
    restated = query(
        published,
        "select restatement_id, new_value - old_value, first_published_at, detected_in_run "
        "from kpi_restatements where kpi_id = 'revenue' and grain = 'month' "
        "and period_start = '2026-01-01' and dimension = 'all'",
    )
    assert [row[1:] for row in restated] == [(300.0, DAYS["day 1"], "day 2")]
    assert query(
        published,
        "select source_object, record_id, file_path, record_number, cause, fields_changed "
        "from kpi_restatement_causes where restatement_id = ?",
        [restated[0][0]],
    ) == [("raw_crm.deals", "1", CORRECTION, 1, "corrected", "properties.amount, updatedAt")]
    # What the run summary and the asset's metadata say of it: January's revenue was deal 1's
    # 1,200 and deal 2's 460.
    _, _, snapshots = days
    assert any(
        line.startswith("revenue (month 2026-01-01): 1660.0 -> 1960.0; causes: ")
        for line in report(snapshots["day 2"])
    )


def test_a_late_ticket_of_a_closed_month_is_a_restatement_naming_it(days):
    published, _, _ = days
    assert query(
        published,
        "select r.old_value, r.new_value, c.source_object, c.record_id, c.file_path, c.cause "
        "from kpi_restatements as r join kpi_restatement_causes as c using (restatement_id) "
        "where r.kpi_id = 'tickets_created' and r.grain = 'month' and r.dimension = 'all'",
    ) == [(4.0, 5.0, "raw_support.tickets", "90", LATE_TICKET, "late")]


def test_the_as_of_query_returns_the_value_published_before_the_correction(days):
    published, _, _ = days
    as_of = (
        "select value from kpi_value_history where kpi_id = 'revenue' and grain = 'month' "
        "and period_start = '2026-01-01' and dimension = 'all' and dimension_value = 'all' "
        "and valid_from <= ? and (valid_to is null or ? < valid_to)"
    )
    on_day_1 = datetime(2026, 2, 2, 23, tzinfo=UTC)
    (before,) = query(published, as_of, [on_day_1, on_day_1])
    (now,) = query(
        published,
        "select value from kpi_values where kpi_id = 'revenue' and grain = 'month' "
        "and period_start = '2026-01-01' and dimension = 'all'",
    )
    assert now[0] - before[0] == 300.0
    assert query(published, as_of, [DAYS["day 3"], DAYS["day 3"]]) == [now]


def test_the_history_survives_reingestion_and_a_rebuild_from_nothing(days):
    """Day 3 deleted the build warehouse (raw, models, dbt state) and made it again: the history
    file and the mart keep both earlier publications and their changes, and day 3 changed
    nothing (the same files give the same kpi_values)."""
    published, history, snapshots = days
    recorded = (
        "select as_of_date, rows_new, rows_changed, rows_removed, restatements from publications"
    )
    day_2 = query(snapshots["day 2"], recorded + " order by publication_number")
    assert len(day_2) == 2 and day_2[0][1] > 0 and day_2[1][4] > 0
    assert query(history, recorded + " order by publication_number") == [
        *day_2,
        (date(2026, 2, 3), 0, 0, 0, 0),
    ]
    changes = "select * from kpi_value_changes order by all"
    assert (
        query(history, changes) == query(snapshots["day 2"], changes) == query(published, changes)
    )


def restated(published, kpi_id, period_start, dimension="all", dimension_value="all"):
    """(old value, new value, [(source object, record id, file, record number, cause,
    fields changed)...]) of a monthly restatement of the mart."""
    ((restatement_id, old, new),) = query(
        published,
        "select restatement_id, old_value, new_value from kpi_restatements where kpi_id = ? "
        "and grain = 'month' and period_start = ? and dimension = ? and dimension_value = ?",
        [kpi_id, period_start, dimension, dimension_value],
    )
    causes = query(
        published,
        "select source_object, record_id, file_path, record_number, cause, fields_changed "
        "from kpi_restatement_causes where restatement_id = ? order by all",
        [restatement_id],
    )
    return old, new, causes


GBP_RATE = ("raw_spend.fx_rates", "GBP 2026-01-15", RATES_CORRECTED, 2, "corrected")
OWNER_501 = ("raw_crm.owners", "501", OWNER_MOVED, 1, "corrected")
DEAL_1 = ("raw_crm.deals", "1", CORRECTION, 1, "corrected", "properties.amount, updatedAt")


def test_a_corrected_fx_rate_is_named_for_the_money_values_converted_at_it(days):
    published, _, _ = days
    # A flow: 100.00 GBP spent on 16 January, at the rate of 15 January: 1.18, then 1.20.
    assert restated(published, "marketing_spend", "2026-01-01") == (
        118.0,
        120.0,
        [(*GBP_RATE, "rate_to_reporting")],
    )
    # A stock: January's open pipeline holds deal 4 (300.00 EUR) and deal 5 (400.00 GBP, open
    # from its creation on 20 January, converted at that day's rate): 300 + 472, then 300 + 480.
    # Deal 1's correction, dated 3 February, changed no state of 31 January: not named.
    assert restated(published, "open_pipeline_value", "2026-01-01") == (
        772.0,
        780.0,
        [(*GBP_RATE, "rate_to_reporting")],
    )
    # The 90-day average deal size of team South (owner 501's, as of 31 January) counts won
    # deals only: deal 5, open, is converted at the GBP rate but not counted.
    assert restated(published, "average_deal_size_90d", "2026-01-01", "team", "South")[2] == [
        (*OWNER_501, "teams[0].id, teams[0].name, updatedAt")
    ]
    # The USD rate of 5 January converts nothing: deal 2 was won on 7 January, and converts at
    # that day's rate (January's revenue names deal 1 alone).
    assert query(
        published, "select count(*) from kpi_restatement_causes where record_id like 'USD %'"
    ) == [(0,)]


def test_an_owner_moving_team_is_named_for_the_team_slices_it_moves_values_between(days):
    published, _, _ = days
    owner = (*OWNER_501, "teams[0].id, teams[0].name, updatedAt")
    # Every deal is owner 501's: January's revenue leaves team North for team South, where
    # deal 1's correction also lands.
    assert restated(published, "revenue", "2026-01-01", "team", "North") == (1660.0, None, [owner])
    assert restated(published, "revenue", "2026-01-01", "team", "South") == (
        None,
        1960.0,
        [DEAL_1, owner],
    )
    # A stock moves too: deals 4 and 5 open at the end of January.
    assert restated(published, "open_deals", "2026-01-01", "team", "North") == (2.0, None, [owner])
    # The company total and the other slices are not the team's: the owner is not named there.
    assert restated(published, "revenue", "2026-01-01")[2] == [DEAL_1]
    assert restated(published, "revenue", "2026-01-01", "owner", "501")[2] == [DEAL_1]


def test_a_stock_names_the_records_whose_state_at_the_period_end_changed(days):
    published, _, _ = days
    # Tickets 1, 2, 3 and 5 were open at the end of January, and ticket 90 was too (open from
    # its creation on 20 January, delivered late). Ticket 4, created on 2 February and
    # corrected on 3 February, had no state on 31 January: not named.
    assert restated(published, "backlog", "2026-01-01") == (
        4.0,
        5.0,
        [("raw_support.tickets", "90", LATE_TICKET, 1, "late", None)],
    )


def test_a_combination_names_the_records_of_the_period_it_reads_before(days):
    published, _, _ = days
    # Revenue growth of January, (January - December) / December: (1660 - 1000) / 1000, then
    # (1960 - 800) / 800: deal 1 of January and deal 6 of December.
    deal_6 = ("raw_crm.deals", "6", CORRECTION, 2, "corrected", "properties.amount, updatedAt")
    assert restated(published, "revenue_growth", "2026-01-01") == (0.66, 1.45, [DEAL_1, deal_6])


def test_a_slice_of_rows_without_a_value_names_their_records(days):
    published, _, _ = days
    # No deal has a company: the KPI rows call their country '(not set)'.
    assert restated(published, "revenue", "2026-01-01", "country", "(not set)") == (
        1660.0,
        1960.0,
        [DEAL_1],
    )

"""Restatements and the publication history on a real build: tests/fixtures/landing_small loaded
by the project's loader, built by dbt and published with a Recording (as the published_mart
asset does), then a day of corrections, then everything ingested and built again from nothing.

Day 1 (as of 2026-02-02, January complete): deal 1 won on 5 January, for 1,200.00 EUR in its
latest version (crm/2026-01-07, after 1,000.00 on 2026-01-05).
Day 2 (2026-02-03): deal 1 delivered again with 1,500.00 (a correction of a closed month), and
ticket 90, created on 20 January, delivered for the first time (a late record).
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


def _deal_1_corrected() -> dict:
    first = json.loads(
        (FIXTURES / "landing_small/crm/2026-01-05/deals.jsonl").read_text().splitlines()[0]
    )
    assert first["id"] == "1" and first["properties"]["amount"] == "1000.00"
    first["properties"]["amount"] = "1500.00"
    first["updatedAt"] = "2026-02-03T08:00:00Z"
    return first


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

    for path, record in ((CORRECTION, _deal_1_corrected()), (LATE_TICKET, LATE)):
        (landing / path).parent.mkdir(parents=True, exist_ok=True)
        (landing / path).write_text(json.dumps(record) + "\n")
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

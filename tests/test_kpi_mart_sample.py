"""The KPI mart on generated sample data, built by daily incremental runs through Dagster.

- a full refresh of the project (`dbt build --full-refresh`, as `boussole run --full-refresh`
  runs it) yields exactly the kpi_values of the daily runs;
- the slices of every additive KPI add up to its company total;
- every KPI of the catalogue is in the mart.
"""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from boussole.dbt_manifest import kpi_catalogue
from tests.conftest import SAMPLE_LAST_DAY, run_dbt

# The runs are shared with tests/test_postgres.py (conftest sample_history).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def daily_runs(sample_history):
    return sample_history.workspace


KPI_KEY = "kpi_id, grain, period_start, dimension, dimension_value"


def differing_kpi_rows(first: Path, second: Path) -> list[tuple]:
    """Rows of kpi_values in one warehouse and not the other, or with other figures. Sums of
    doubles may differ in the last bits with the order of rows: figures compare at 1e-9."""
    conn = duckdb.connect()
    try:
        conn.execute(f"attach '{first}' as first_build (read_only)")
        conn.execute(f"attach '{second}' as second_build (read_only)")
        return conn.execute(
            f"""
            select {KPI_KEY}, a.value, b.value
            from first_build.kpi.kpi_values as a
            full join second_build.kpi.kpi_values as b using ({KPI_KEY})
            where a.kpi_id is null or b.kpi_id is null
                or a.status is distinct from b.status
                or a.is_complete_period is distinct from b.is_complete_period
                or not (
                    (a.numerator is null and b.numerator is null)
                    or abs(a.numerator - b.numerator) <= 1e-9 * greatest(1, abs(a.numerator)))
                or not (
                    (a.denominator is null and b.denominator is null)
                    or abs(a.denominator - b.denominator) <= 1e-9 * greatest(1, abs(a.denominator)))
                or not (
                    (a.value is null and b.value is null)
                    or abs(a.value - b.value) <= 1e-9 * greatest(1, abs(a.value)))
                or not (
                    (a.previous_value is null and b.previous_value is null)
                    or abs(a.previous_value - b.previous_value)
                        <= 1e-9 * greatest(1, abs(a.previous_value)))
            """
        ).fetchall()
    finally:
        conn.close()


def kpi_row_count(warehouse: Path) -> int:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute("select count(*) from kpi.kpi_values").fetchone()[0]
    finally:
        conn.close()


def web_event_run_markers(warehouse: Path) -> int:
    """How many runs wrote the staged web events (one per run that brought new files)."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute(
            "select count(distinct _transformed_at) from staging.stg_web__events"
        ).fetchone()[0]
    finally:
        conn.close()


def test_full_refresh_equals_the_daily_incremental_runs(daily_runs, tmp_path):
    incremental = daily_runs.data / "build" / "warehouse.duckdb"
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incremental, warehouse)
    # The unit tests do not read the data: the daily runs checked them.
    refreshed = run_dbt(
        *("build", "--full-refresh", "--exclude", "resource_type:unit_test"),
        warehouse=warehouse,
        target=tmp_path / "target",
        pii_key=daily_runs.env["BOUSSOLE_PII_KEY"],
        as_of_date=SAMPLE_LAST_DAY,
    )
    assert refreshed.returncode == 0, refreshed.stdout[-5000:] + refreshed.stderr
    # Three runs staged events in turn; the full refresh restaged them all at once.
    assert (web_event_run_markers(incremental), web_event_run_markers(warehouse)) == (3, 1)
    assert kpi_row_count(incremental) > 1000
    assert differing_kpi_rows(incremental, warehouse) == []


def test_slices_of_additive_kpis_add_up_to_the_company_total(daily_runs):
    additive = [
        kpi["id"]
        for kpi in kpi_catalogue()
        if kpi.get("additive") and kpi["computation"]["type"] != "combination"
    ]
    conn = duckdb.connect(str(daily_runs.published), read_only=True)
    try:
        mismatches = conn.execute(
            """
            with slices as (
                select kpi_id, grain, period_start, dimension, sum(value) as slices_total
                from kpi_values
                where dimension <> 'all' and kpi_id in (select unnest(?::varchar[]))
                group by all
            )
            select slices.*, company.value as company_total
            from slices
            join kpi_values as company
                on company.kpi_id = slices.kpi_id and company.grain = slices.grain
                and company.period_start = slices.period_start and company.dimension = 'all'
            where abs(slices_total - company.value) > 1e-6 * greatest(1, abs(company.value))
            """,
            [additive],
        ).fetchall()
        checked = conn.execute(
            "select count(distinct kpi_id || dimension) from kpi_values "
            "where dimension <> 'all' and kpi_id in (select unnest(?::varchar[]))",
            [additive],
        ).fetchone()[0]
    finally:
        conn.close()
    assert checked > 50
    assert mismatches == []


def test_every_kpi_of_the_catalogue_is_published(daily_runs):
    conn = duckdb.connect(str(daily_runs.published), read_only=True)
    try:
        published = {
            row[0]
            for row in conn.execute(
                "select distinct kpi_id from kpi_values "
                "where dimension = 'all' and value is not null"
            ).fetchall()
        }
        labels = conn.execute(
            "select label_fr from kpi_catalogue where kpi_id = 'customer_lifetime_value'"
        ).fetchone()
    finally:
        conn.close()
    assert {kpi["id"] for kpi in kpi_catalogue()} - published == set()
    assert labels == ("Valeur vie client (CLV)",)


def test_periods_complete_as_they_end_and_raise_threshold_alerts(daily_runs):
    """The sample delivers every source every day: each period that ended before the as-of
    date is complete for every KPI, no source day is missing, and the published alerts hold a
    threshold alert for each KPI, grain and slice whose latest complete period is at risk
    (warning) or off track (critical), found here from kpi_values."""
    with duckdb.connect(str(daily_runs.published), read_only=True) as conn:
        completeness = conn.execute(
            "select count(*) filter (where is_complete_period <> (period_end < ?)), "
            "count(missing_source_days) from kpi_values",
            [SAMPLE_LAST_DAY],
        ).fetchone()
        statuses = conn.execute(
            "select kpi_id, grain, period_start, dimension, dimension_value, status "
            "from kpi_values where is_complete_period and status is not null"
        ).fetchall()
        raised = conn.execute("select alert_key, kind, severity from alerts").fetchall()
    assert completeness == (0, 0)
    latest = {}
    for kpi, grain, start, dimension, value, status in statuses:
        series = (kpi, grain, dimension, value)
        latest[series] = max(latest.get(series, (start, status)), (start, status))
    severity = {"at_risk": "warning", "off_track": "critical"}
    expected = {
        f"threshold|{kpi}|{grain}|{start}|{dimension}|{value}": severity[status]
        for (kpi, grain, dimension, value), (start, status) in latest.items()
        if status in severity
    }
    assert expected, "the sample has KPIs off their targets"
    assert {key: level for key, kind, level in raised if kind == "threshold"} == expected


# The marts that incremental models build (dbt's delete+insert on a unique key).
INCREMENTAL_MARTS = (
    "fct_page_views",
    "fct_web_page_days",
    "fct_web_sessions",
    "fct_web_transactions",
)


def test_daily_publications_carry_the_incremental_marts_by_their_changes(daily_runs, monkeypatch):
    """The last daily run published the incremental marts by the rows its build wrote, on a
    copy of the mart served before (itself published that way): they still hold exactly the
    rows of the build warehouse."""
    monkeypatch.setenv("DAGSTER_HOME", str(daily_runs.dagster_home))
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("published_mart"))
    rows_changed = event.asset_materialization.metadata["rows_changed"].data
    tables = event.asset_materialization.metadata["tables"].data
    assert sorted(rows_changed) == list(INCREMENTAL_MARTS)
    assert 0 < rows_changed["fct_page_views"] < tables["fct_page_views"]
    with duckdb.connect(str(daily_runs.published), read_only=True) as conn:
        conn.execute(
            "attach ? as build (read_only)", [str(daily_runs.data / "build" / "warehouse.duckdb")]
        )
        for table in INCREMENTAL_MARTS:
            assert conn.execute(
                f"select (select count(*) from (select * from main.{table} "
                f"except all select * from build.marts.{table})), "
                f"(select count(*) from (select * from build.marts.{table} "
                f"except all select * from main.{table}))"
            ).fetchone() == (0, 0), table

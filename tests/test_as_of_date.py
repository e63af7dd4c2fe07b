"""The as-of date reaches the models as an environment variable that they read when they run
(kpi_as_of_date in dbt_project/macros/kpi/catalogue.sql), not as a dbt var: a build with a new
as-of date (each day's extract) re-parses nothing, and its periods are as of that date."""

from pathlib import Path

import duckdb

from tests.conftest import run_dbt

JANUARY = (
    "select days_elapsed, is_complete_period from kpi.int_kpi__periods "
    "where grain = 'month' and period_start = date '2026-01-01'"
)


def january_as_of(as_of_date: str, warehouse: Path, target: Path) -> tuple[int, bool]:
    built = run_dbt(
        *("run", "--select", "dim_date int_kpi__periods"),
        warehouse=warehouse,
        target=target,
        pii_key="test-key-for-boussole-tests",
        as_of_date=as_of_date,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(JANUARY).fetchone()


def test_a_new_as_of_date_is_built_without_parsing_again(tmp_path):
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "target"

    assert january_as_of("2026-01-15", warehouse, target) == (15, False)
    assert january_as_of("2026-02-03", warehouse, target) == (31, True)

    # The second invocation found the first one's parse (same target folder) and used it whole.
    second = (target / "dbt.log").read_text().split("Running with dbt=")[-1]
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed" in second

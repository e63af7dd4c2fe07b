"""The data tests of the incremental models check the rows a daily build wrote
(dbt_project/macros/test_scope.sql, BOUSSOLE_TEST_SCOPE=this_run), and still catch a bad row
that build writes; without the scope (a full refresh, a first build) they test every row.

Fixture tests/fixtures/web_incremental: day 1 built (every row tested), day 2 built daily with
the scope. Then, on copies of that warehouse: rows a faulty build would have written, tested
with and without the scope; and a day 3 whose events give a session a negative engagement
time, built daily with the scope, which must fail on that row.
"""

import json
import os
import shutil
from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pytest

from boussole.audit_scope import ALL_ROWS, TEST_SCOPE_VARIABLE, THIS_RUN, TestScope
from orchestration.assets.transformation import with_broken_rules
from tests.conftest import load_landing, run_dbt

LANDING = Path(__file__).resolve().parent / "fixtures" / "web_incremental"
PII_KEY = "test-key-for-web-incremental-tests"
SELECTION = (
    "+fct_web_sessions +fct_page_views +fct_web_transactions +fct_web_page_days +dim_channel "
    "+int_kpi__web"
)
DAY_1, DAY_2, DAY_3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)
# A new session on day 3 whose only page view reports a negative engagement time.
BAD_EVENT = {
    "event_date": "20260107",
    "event_timestamp": 1767776400000000,
    "event_name": "page_view",
    "event_params": [
        {"key": "ga_session_id", "value": {"int_value": 900}},
        {"key": "page_location", "value": {"string_value": "https://www.boussole-demo.fr/"}},
        {"key": "engagement_time_msec", "value": {"int_value": -5000}},
    ],
    "user_pseudo_id": "u9",
    "user_id": None,
    "device": {"category": "desktop"},
    "geo": {"country": "France"},
    "platform": "WEB",
}


def dbt(warehouse: Path, *args: str, scope: str | None) -> dict[str, str]:
    """dbt on `warehouse` with BOUSSOLE_TEST_SCOPE set to `scope` (unset when None); the status
    of each test that did not pass (or compile), by name."""
    environ = {k: v for k, v in os.environ.items() if k != TEST_SCOPE_VARIABLE}
    if scope:
        environ[TEST_SCOPE_VARIABLE] = scope
    target = warehouse.parent / "target"
    with mock.patch.dict(os.environ, environ, clear=True):
        run_dbt(*args, warehouse=warehouse, target=target, pii_key=PII_KEY, timeout=600)
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].split(".")[2]: r["status"]
        for r in results
        if r["unique_id"].startswith("test.") and r["status"] not in ("pass", "success")
    }


def broken_rules(warehouse: Path) -> dict[str, str]:
    """The rules broken by the rows of each column_values test that failed in the last dbt
    invocation on `warehouse`, as the Dagster step reports them."""
    target = warehouse.parent / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    run_results = json.loads((target / "run_results.json").read_text())
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        results = with_broken_rules(conn, manifest, run_results)["results"]
    return {r["unique_id"].split(".")[2]: r["broken_rules"] for r in results if "broken_rules" in r}


def build(warehouse: Path, *args: str, scope: str | None) -> dict[str, str]:
    return dbt(
        warehouse,
        *("build", "--select", SELECTION, "--indirect-selection", "cautious", *args),
        scope=scope,
    )


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse after day 1 (every row tested) and day 2 (the rows it wrote)."""
    warehouse = tmp_path_factory.mktemp("daily") / "warehouse.duckdb"
    load_landing(warehouse, LANDING, sources=["web"], extract_date=DAY_1)
    assert build(warehouse, scope=None) == {}
    load_landing(warehouse, LANDING, sources=["web"], extract_date=DAY_2)
    assert build(warehouse, scope=THIS_RUN) == {}
    return warehouse


def copy_of(warehouse: Path, root: Path) -> Path:
    root.mkdir()
    shutil.copyfile(warehouse, root / warehouse.name)
    return root / warehouse.name


def test_a_bad_row_written_by_a_daily_build_fails_its_tests(daily, tmp_path):
    warehouse = copy_of(daily, tmp_path / "day_3")
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    (landing / "web" / DAY_3.isoformat()).mkdir()
    # The gate refuses a negative engagement time: the event lands with a good one, and its
    # raw row is then made bad, as a warehouse loaded by an earlier, laxer version holds it.
    good = json.loads(json.dumps(BAD_EVENT).replace("-5000", "5000"))
    (landing / "web" / DAY_3.isoformat() / "events.jsonl").write_text(json.dumps(good) + "\n")
    load_landing(warehouse, landing, sources=["web"], extract_date=DAY_3)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "update raw_web.events set record = ?::json where _extract_date = ?",
            [json.dumps(BAD_EVENT), DAY_3],
        )

    failed = build(warehouse, scope=THIS_RUN)

    # The session the build wrote: its tests fail and the models built from it are skipped.
    assert failed["int_web__sessions_column_values"] == "fail"
    assert {status for status in failed.values()} <= {"fail", "skipped"}
    # The model's column rules are one test: the step names the rule the row breaks.
    assert broken_rules(warehouse)["int_web__sessions_column_values"] == (
        "engagement_time_msec is negative: 1 row"
    )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute(
            "select session_key from intermediate.int_web__sessions "
            "where engagement_time_msec < 0 and _transformed_at = "
            "(select max(_transformed_at) from intermediate.int_web__sessions)"
        ).fetchall() == [("u9-900",)]


def test_the_scope_is_the_rows_of_the_last_write_and_keys_over_the_whole_table(daily, tmp_path):
    warehouse = copy_of(daily, tmp_path / "faulty")
    with duckdb.connect(str(warehouse)) as conn:
        latest, earliest = conn.execute(
            "select max(_transformed_at), min(_transformed_at) from marts.fct_web_sessions"
        ).fetchone()
        assert earliest < latest  # day 1 rows the daily build left alone, and its own rows
        # u2/200, which day 2 left alone: a faulty daily build writes it again without
        # removing the row of day 1 (a duplicate key across the two writes)...
        conn.execute(
            "insert into marts.fct_web_sessions select * replace (cast(? as timestamptz) as "
            "_transformed_at) from marts.fct_web_sessions where session_key = 'u2-200'",
            [latest],
        )
        # ... and the row of day 1, broken since (no build that passed wrote it so).
        conn.execute(
            "update marts.fct_web_sessions set duration_s = -1 "
            "where session_key = 'u2-200' and _transformed_at = ?",
            [earliest],
        )
    tests = ("test", "--select", "fct_web_sessions")

    # With the scope: the duplicate is found (the key the build wrote, over the whole table),
    # and so are the totals that no longer match; the older row is not the build's.
    scoped = dbt(warehouse, *tests, scope=THIS_RUN)
    assert scoped == {
        "unique_fct_web_sessions_session_key": "fail",
        "fct_web_sessions_are_those_of_int_web__sessions": "fail",
        "fct_web_sessions_pageviews_are_the_rows_of_fct_page_views": "fail",
    }
    # Without it (a full refresh, the first build, or the one after a failed build), every row.
    assert dbt(warehouse, *tests, scope=None) == {
        **scoped,
        "fct_web_sessions_column_values": "fail",
    }
    assert broken_rules(warehouse)["fct_web_sessions_column_values"] == (
        "duration_s is negative: 1 row"
    )


def test_a_full_refresh_tests_every_row_whatever_the_scope(daily, tmp_path):
    warehouse = copy_of(daily, tmp_path / "full")
    target = warehouse.parent / "target"
    tests = ("fct_web_sessions_column_values", "unique_stg_web__events_event_key")
    for full_refresh, scoped in ((False, True), (True, False)):
        shutil.rmtree(target / "compiled", ignore_errors=True)
        flags = ["--full-refresh"] if full_refresh else []
        assert dbt(warehouse, "compile", *flags, "--select", *tests, scope=THIS_RUN) == {}
        for test in tests:
            compiled = next(target.rglob(f"{test}.sql")).read_text()
            # With --full-refresh (dbt's flag) the marker is dropped: every row is tested.
            assert ("_transformed_at" in compiled) is scoped, compiled


def test_a_build_scoped_to_this_run_leaves_the_unit_tests_out(tmp_path):
    """They check the project's logic on fixed rows: the last build ran them, on the same
    project files and dbt (boussole/audit_scope.py)."""

    def unit_tests(scope: str) -> list[str]:
        listed = run_dbt(
            *("ls", "--resource-type", "unit_test", "--output", "name", "--quiet"),
            *TestScope(scope, "").dbt_args,
            warehouse=tmp_path / "warehouse.duckdb",
            target=tmp_path / "target",
            pii_key=PII_KEY,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        return listed.stdout.split()

    assert unit_tests(THIS_RUN) == []
    every_row = unit_tests(ALL_ROWS)
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert sorted(every_row) == sorted(test["name"] for test in manifest["unit_tests"].values())
    assert "kpi_values_compares_periods_and_grades_against_targets" in every_row

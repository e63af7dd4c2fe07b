"""The incremental web path gives exactly the rows of a full refresh.

Fixture tests/fixtures/web_incremental: day 1 (2026-01-05) holds sessions u1/100, u2/200 (a
purchase logged twice), u3/301 and u6/600 (one page view at 00:10 on 7 January, Paris time:
the only session of that day); day 2 (2026-01-06) brings a late event of u1/100, the page
view of u2/200 delivered again, u3/300, an earlier session of u3 than u3/301, a new session
u5/500, an earlier page view of u6/600 (23:55 on 6 January), which moves that session to
the 6th and leaves the 7th empty, and u2/201, the confirmation page of purchase T-1 reloaded
the next day (a third purchase event of T-1). Warehouse A loads day 1, builds, loads day 2 and
builds incrementally; warehouse B loads both days and builds with --full-refresh. Every
incremental model, the web KPIs included, must hold the same rows in both (EXCEPT both ways),
apart from the run marker _transformed_at.

The users of the daily run are the stored counts updated from the members that changed
(int_kpi__web_members); warehouse C builds its members alone in full between the two days,
so that its daily run must recount users from the facts instead, with the same result.
"""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import load_landing, run_dbt

TESTS_DIR = Path(__file__).resolve().parent
LANDING = TESTS_DIR / "fixtures" / "web_incremental"
PII_KEY = "test-key-for-web-incremental-tests"
SELECTION = (
    "+fct_web_sessions +fct_page_views +fct_web_transactions +fct_web_page_days +dim_channel "
    "+int_kpi__web"
)
INCREMENTAL_MODELS = (
    "staging.stg_web__events",
    "intermediate.int_web__sessions",
    "marts.fct_web_sessions",
    "marts.fct_page_views",
    "marts.fct_web_transactions",
    "marts.fct_web_page_days",
    "kpi.int_kpi__web",
)
DAY_1, DAY_2 = date(2026, 1, 5), date(2026, 1, 6)


def load_day(warehouse: Path, extract_date: date) -> None:
    load_landing(warehouse, LANDING, sources=["web"], extract_date=extract_date)


def dbt_build(warehouse: Path, *args: str, selection: str = SELECTION) -> str:
    result = run_dbt(
        *("build", "--select", selection, "--indirect-selection", "cautious", *args),
        warehouse=warehouse,
        target=warehouse.parent / "target",
        pii_key=PII_KEY,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory):
    incremental = tmp_path_factory.mktemp("incremental") / "warehouse.duckdb"
    full = tmp_path_factory.mktemp("full") / "warehouse.duckdb"

    load_day(incremental, DAY_1)
    dbt_build(incremental)
    conn = duckdb.connect(str(incremental), read_only=True)
    try:
        day_1_markers = dict(
            conn.execute(
                "select session_key, _transformed_at from intermediate.int_web__sessions"
            ).fetchall()
        )
    finally:
        conn.close()
    load_day(incremental, DAY_2)
    daily_output = dbt_build(incremental)

    load_day(full, DAY_1)
    load_day(full, DAY_2)
    dbt_build(full, "--full-refresh")

    conn = duckdb.connect(str(incremental), read_only=True)
    conn.execute(f"attach '{full}' as full_build (read_only)")
    yield conn, day_1_markers, daily_output
    conn.close()


@pytest.fixture(scope="module")
def out_of_step(warehouses, tmp_path_factory: pytest.TempPathFactory):
    """Warehouse C: day 1 built, its members rebuilt alone in full, then day 2."""
    warehouse = tmp_path_factory.mktemp("out_of_step") / "warehouse.duckdb"
    load_day(warehouse, DAY_1)
    dbt_build(warehouse)
    dbt_build(warehouse, "--full-refresh", selection="int_kpi__web_members")
    load_day(warehouse, DAY_2)
    daily_output = dbt_build(warehouse)
    conn, *_ = warehouses
    conn.execute(f"attach '{warehouse}' as out_of_step (read_only)")
    yield conn, daily_output
    conn.execute("detach out_of_step")


def columns(conn: duckdb.DuckDBPyConnection, model: str) -> str:
    """The columns to compare: all but the run markers and, for the members, their history."""
    schema, table = model.split(".")
    names = conn.execute(
        "select column_name from information_schema.columns where table_catalog = 'warehouse' "
        "and table_schema = ? and table_name = ? and column_name not in "
        "('_transformed_at', '_previous_run_at', 'membership_change') order by ordinal_position",
        [schema, table],
    ).fetchall()
    return ", ".join(f'"{name}"' for (name,) in names)


@pytest.mark.parametrize("model", INCREMENTAL_MODELS)
def test_incremental_runs_equal_a_full_refresh(warehouses, model):
    conn, *_ = warehouses
    assert_same_rows(conn, model, model, f"full_build.{model}")


def assert_same_rows(conn, model: str, built: str, expected: str, where: str = "true") -> None:
    cols = columns(conn, model)
    built_rows = conn.execute(f"select count(*) from {built} where {where}").fetchone()[0]
    expected_rows = conn.execute(f"select count(*) from {expected} where {where}").fetchone()[0]
    only_built = conn.execute(
        f"select {cols} from {built} where {where} "
        f"except all select {cols} from {expected} where {where}"
    ).fetchall()
    only_expected = conn.execute(
        f"select {cols} from {expected} where {where} "
        f"except all select {cols} from {built} where {where}"
    ).fetchall()
    assert (only_built, only_expected) == ([], [])
    assert built_rows == expected_rows > 0


def sessions(conn):
    rows = conn.execute(
        "select session_key, events, pageviews, duration_s, engagement_time_msec, is_engaged, "
        "has_key_event, is_new_user, landing_page, channel_group from marts.fct_web_sessions"
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_late_duplicate_and_earlier_sessions_after_the_daily_run(warehouses):
    conn, *_ = warehouses
    assert sessions(conn) == {
        # The late user_engagement (10:05) of day 2 extends u1/100 to 300 s and 13 s engaged.
        "u1-100": (5, 2, 300, 13000, True, False, True, "/", "Organic Search"),
        # The page view delivered again on day 2 counts once; both purchase events count.
        "u2-200": (4, 1, 62, 0, True, True, True, "/blog/kpi", "Direct"),
        # u3/300 (08:00, delivered on day 2) precedes u3/301 (15:00): it takes "new user".
        "u3-300": (2, 1, 5, 0, True, True, True, "/contact", "Direct"),
        "u3-301": (1, 1, 0, 0, False, False, False, "/", "Email"),
        "u5-500": (2, 1, 20, 0, True, True, True, "/tarifs", "Paid Search"),
        # The reloaded confirmation page: one purchase event (a key event), no page view.
        "u2-201": (1, 0, 0, 0, True, True, False, None, "Direct"),
        # Its page view of 23:55 arrived a day late: the session starts 15 minutes earlier,
        # on "/", and two page views make it engaged. Its user was first seen then.
        "u6-600": (2, 2, 900, 0, True, False, True, "/", "Direct"),
    }
    # The purchase logged three times, the third the next day, is one transaction, at its first
    # event: the daily run looked up the events of the 5th as well as the new one of the 6th.
    assert conn.execute(
        "select transaction_id, purchase_revenue, purchase_revenue_reporting, session_key, "
        "transaction_date, last_purchase_date from marts.fct_web_transactions"
    ).fetchall() == [("T-1", 99.0, 99.0, "u2-200", date(2026, 1, 5), date(2026, 1, 6))]
    # The late event is engagement on /tarifs, the second page of u1/100.
    assert conn.execute(
        "select page_path, is_entrance, engagement_time_msec from marts.fct_page_views "
        "where session_key = 'u1-100' order by viewed_at"
    ).fetchall() == [("/", True, 0), ("/tarifs", False, 13000)]


def test_the_daily_run_recomputes_only_the_sessions_it_touches(warehouses):
    conn, day_1_markers, _ = warehouses
    after = dict(
        conn.execute(
            "select session_key, _transformed_at from intermediate.int_web__sessions"
        ).fetchall()
    )
    rewritten = sorted(key for key, marker in day_1_markers.items() if after[key] != marker)
    # u2/200 received only a duplicate delivery: it is left as it was. u3/301 is rewritten
    # for is_new_user (an earlier session of its user arrived).
    assert rewritten == ["u1-100", "u3-301", "u6-600"]


def test_web_kpis_follow_a_session_to_its_new_day(warehouses):
    conn, *_ = warehouses
    day_sessions = conn.execute(
        "select period_start, value from kpi.int_kpi__web where kpi_id = 'sessions' "
        "and grain = 'day' and dimension = 'all' order by period_start"
    ).fetchall()
    # 5 January: u1/100, u2/200, u3/301 (day 1), and u3/300 (delivered on day 2). 6 January:
    # u5/500, u2/201 and u6/600, moved there from the 7th, which has no session left, so no row.
    assert day_sessions == [(date(2026, 1, 5), 4.0), (date(2026, 1, 6), 3.0)]
    # The ISO week of 5 January holds all seven sessions and five users (u1, u2, u3, u5, u6).
    assert conn.execute(
        "select kpi_id, value from kpi.int_kpi__web where grain = 'week' "
        "and dimension = 'all' and kpi_id in ('sessions', 'users') order by kpi_id"
    ).fetchall() == [("sessions", 7.0), ("users", 5.0)]


def test_the_daily_run_updates_users_from_the_changed_members(warehouses):
    conn, _, daily_output = warehouses
    # The members of the days now, after a run that rewrote some of them, are those of a full
    # build; rows the run removed stay, marked, until their day is rewritten.
    assert_same_rows(
        conn,
        "kpi.int_kpi__web_members",
        "kpi.int_kpi__web_members",
        "full_build.kpi.int_kpi__web_members",
        where="membership_change <> 'removed'",
    )
    # u6/600 moved from the 7th to the 6th: its 8 rows (all and 7 slices) of the 7th are
    # removed, those of the 6th added.
    assert conn.execute(
        "select period_start, membership_change, count(*) from kpi.int_kpi__web_members "
        "where member = 'u6' group by all order by period_start"
    ).fetchall() == [(date(2026, 1, 6), "added", 8), (date(2026, 1, 7), "removed", 8)]
    # The members day 2 changed: u2 (u2/201 adds it to the 6th), u3 (u3/300 adds its slices to
    # the 5th), u5 (new) and u6 (moved). u1's late event and u2's duplicate change no membership.
    assert "int_kpi__web: distinct counts updated from 4 changed members" in daily_output


def test_members_out_of_step_recount_users_from_the_facts(out_of_step):
    conn, daily_output = out_of_step
    assert "int_kpi__web: distinct counts recounted from the facts" in daily_output
    model = "kpi.int_kpi__web"
    assert_same_rows(conn, model, f"out_of_step.{model}", f"full_build.{model}")

"""The GX runner: expectations that pass, fail, and cannot run are told apart."""

from collections import defaultdict

import duckdb
import pytest
import yaml

from data_quality.runner import ExpectationSpec, SuiteRunner, SuiteSpec, load_suites


@pytest.fixture(scope="module")
def runner():
    return SuiteRunner()


@pytest.fixture
def conn():
    connection = duckdb.connect()
    connection.execute("create schema marts")
    connection.execute(
        "create table marts.t as "
        "select * from (values (1, 30.0), (2, -5.0), (2, null)) v(id, minutes)"
    )
    yield connection
    connection.close()


def suite(*expectations):
    return SuiteSpec(name="t", table="marts.t", description="", expectations=tuple(expectations))


def test_failures_count_unexpected_rows(runner, conn):
    outcome = runner.run(
        conn,
        suite(
            ExpectationSpec("id_unique", "expect_column_values_to_be_unique", {"column": "id"}),
            ExpectationSpec(
                "minutes_not_negative",
                "expect_column_values_to_be_between",
                {"column": "minutes", "min_value": 0},
            ),
        ),
    )
    assert not outcome.passed
    by_name = {o.name: o for o in outcome.outcomes}
    assert (by_name["id_unique"].status, by_name["id_unique"].unexpected_count) == ("failed", 2)
    assert by_name["minutes_not_negative"].status == "failed"
    assert by_name["minutes_not_negative"].unexpected_count == 1
    assert by_name["minutes_not_negative"].unexpected_sample == [-5.0]
    assert outcome.rows_validated == 3


def test_passing_suite(runner, conn):
    outcome = runner.run(
        conn,
        suite(
            ExpectationSpec("id_set", "expect_column_values_to_not_be_null", {"column": "id"}),
            ExpectationSpec(
                "minutes_at_most_30",
                "expect_column_max_to_be_between",
                {"column": "minutes", "max_value": 30},
            ),
        ),
    )
    assert outcome.passed and outcome.summary() == "2 expectations passed on 3 rows"
    # Each expectation was evaluated on the table's rows: what GX observed comes from them.
    assert [(o.name, o.status, o.unexpected_count) for o in outcome.outcomes] == [
        ("id_set", "passed", 0),
        ("minutes_at_most_30", "passed", None),
    ]
    assert outcome.outcomes[1].observed_value == 30.0
    # The same expectations with another bound, or on a column with a null, fail.
    stricter = runner.run(
        conn,
        suite(
            ExpectationSpec(
                "minutes_set", "expect_column_values_to_not_be_null", {"column": "minutes"}
            ),
            ExpectationSpec(
                "minutes_at_most_29",
                "expect_column_max_to_be_between",
                {"column": "minutes", "max_value": 29},
            ),
        ),
    )
    assert [(o.status, o.unexpected_count) for o in stricter.outcomes] == [
        ("failed", 1),
        ("failed", None),
    ]


def test_checks_that_cannot_run_are_errors_not_failures(runner, conn):
    # GX cannot compare text values with a numeric bound: it reports exception_info.
    conn.execute("create table marts.words as select * from (values ('a'), ('b')) v(word)")
    gx_error = runner.run(
        conn,
        SuiteSpec(
            name="words",
            table="marts.words",
            description="",
            expectations=(
                ExpectationSpec(
                    "word_between",
                    "expect_column_values_to_be_between",
                    {"column": "word", "min_value": 0},
                ),
            ),
        ),
    )
    missing_column = runner.run(
        conn,
        suite(ExpectationSpec("nope", "expect_column_values_to_not_be_null", {"column": "nope"})),
    )
    missing_parameter = runner.run(
        conn,
        suite(
            ExpectationSpec(
                "floor",
                "expect_column_values_to_be_between",
                {"column": "minutes", "min_value": {"$PARAMETER": "floor"}},
            )
        ),
    )
    for outcome in (gx_error, missing_column, missing_parameter):
        assert not outcome.passed
        assert outcome.failed == []
        assert [o.status for o in outcome.outcomes] == ["error"]
        assert "could not run" in outcome.summary()
    assert "same type" in gx_error.outcomes[0].error
    assert "nope" in missing_column.outcomes[0].error
    assert "floor" in missing_parameter.outcomes[0].error


def test_run_time_parameters_reach_the_expectations(runner, conn):
    spec = suite(
        ExpectationSpec(
            "minutes_above_floor",
            "expect_column_values_to_be_between",
            {"column": "minutes", "min_value": {"$PARAMETER": "floor"}},
        )
    )
    assert runner.run(conn, spec, parameters={"floor": -10}).passed
    assert not runner.run(conn, spec, parameters={"floor": 0}).passed


def dbt_model_columns() -> dict[str, set[str]]:
    """{schema.model: documented columns} from the schema YAML of the dbt project's models."""
    from boussole.settings import DBT_PROJECT_DIR

    models: dict[str, set[str]] = {}
    for path in (DBT_PROJECT_DIR / "models").rglob("*.yml"):
        # Each layer's folder is its schema (dbt_project.yml).
        schema = path.relative_to(DBT_PROJECT_DIR / "models").parts[0]
        for model in yaml.safe_load(path.read_text()).get("models") or []:
            columns = {column["name"] for column in model.get("columns", [])}
            models[f"{schema}.{model['name']}"] = columns
    return models


def test_project_suites_are_well_formed():
    from great_expectations.expectations.registry import get_expectation_impl

    suites = {s.name: s for s in load_suites()}
    assert {"kpi_value_bounds", "fct_tickets", "fct_deals", "fct_web_sessions"} <= set(suites)
    models = dbt_model_columns()
    for spec in suites.values():
        # A suite guards a published table with at least one expectation, each with its own
        # name, of a type GX knows, of a known severity, on columns the table has (a suite
        # with a query validates the columns of its query's result).
        assert spec.table.startswith(("marts.", "kpi.")) and spec.table in models, spec.name
        assert spec.expectations, spec.name
        names = [e.name for e in spec.expectations]
        assert len(names) == len(set(names)), spec.name
        for expectation in spec.expectations:
            get_expectation_impl(expectation.type)  # raises for an unknown type
            assert expectation.severity in ("blocking", "warning")
            assert expectation.columns(), (spec.name, expectation.name)
            if spec.query is None:
                assert set(expectation.columns()) <= models[spec.table], (
                    spec.name,
                    expectation.name,
                )
    # The guarding expectations the project relies on are there.
    assert {e.name for e in suites["fct_tickets"].expectations} >= {
        "first_reply_minutes_not_negative",
        "solved_not_before_created",
    }
    assert {e.name for e in suites["fct_deals"].expectations} >= {"amount_not_negative"}


def test_no_property_is_checked_by_both_dbt_and_great_expectations():
    """dbt tests keep the structure (unique, not null, relationships, accepted values,
    not_negative where a model declares it); a GX expectation never checks a column property
    that a dbt test of the same model already checks."""
    from boussole.settings import DBT_PROJECT_DIR

    # GX expectation type -> the dbt tests checking the same property of a column.
    same_property = {
        "expect_column_values_to_be_unique": {"unique"},
        "expect_column_values_to_not_be_null": {"not_null"},
        "expect_column_values_to_be_in_set": {"accepted_values", "relationships"},
        "expect_column_values_to_be_between": {"not_negative"},
    }
    dbt_tests: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in (DBT_PROJECT_DIR / "models").rglob("*.yml"):
        schema = path.relative_to(DBT_PROJECT_DIR / "models").parts[0]
        for model in yaml.safe_load(path.read_text()).get("models") or []:
            table = f"{schema}.{model['name']}"
            for column in model.get("columns", []):
                dbt_tests[(table, column["name"])] |= {
                    t if isinstance(t, str) else next(iter(t)) for t in column.get("data_tests", [])
                }
            # The column rules of the model, in its one column_values test.
            for test in model.get("data_tests", []):
                rules = (test.get("column_values") or {}).get("arguments", {})
                for rule, columns in rules.items():
                    for column in columns:
                        dbt_tests[(table, column)].add(rule)
    for spec in load_suites():
        if spec.query is not None:
            continue
        for expectation in spec.expectations:
            properties = same_property.get(expectation.type, set())
            if "min_value" not in expectation.kwargs:
                properties = properties - {"not_negative"}  # an upper bound only
            for column in expectation.columns():
                both = properties & dbt_tests.get((spec.table, column), set())
                assert not both, (spec.name, expectation.name, both)


def test_kpi_ids_come_from_the_catalogue_file():
    from boussole.dbt_manifest import ensure_manifest, published_kpi_ids
    from boussole.settings import Settings
    from tests.conftest import PROJECT_ROOT

    # The ids are read from the dbt manifest: parsed here when missing or stale, so that this
    # test does not depend on another having prepared it.
    ensure_manifest(Settings.from_env())

    catalogue = yaml.safe_load(
        (PROJECT_ROOT / "dbt_project/models/kpi/kpi_catalogue.yml").read_text()
    )
    ids = [kpi["id"] for kpi in catalogue["models"][0]["config"]["meta"]["kpis"]]
    assert published_kpi_ids() == sorted(ids)
    # Every KPI of the brief (shared/kpi-catalogue.md) is in it.
    brief = {
        "revenue",
        "revenue_growth",
        "deals_won",
        "average_deal_size",
        "win_rate",
        "sales_cycle_days",
        "open_pipeline_value",
        "weighted_pipeline_value",
        "pipeline_velocity",
        "sales_activities",
        "new_customers",
        "active_customers",
        "customer_retention_rate",
        "mrr",
        "leads",
        "mqls",
        "sqls",
        "mql_to_sql_rate",
        "lead_to_customer_rate",
        "lead_conversion_rate_90d",
        "marketing_spend",
        "cost_per_lead",
        "cac",
        "marketing_roi",
        "customer_lifetime_value",
        "ltv_to_cac",
        "email_open_rate",
        "email_click_rate",
        "sessions",
        "users",
        "new_users",
        "pageviews",
        "pages_per_session",
        "avg_session_duration_s",
        "engagement_rate",
        "bounce_rate",
        "web_conversion_rate",
        "visitor_to_customer_rate",
        "transactions",
        "transaction_revenue",
        "tickets_created",
        "tickets_solved",
        "resolution_rate",
        "first_response_time_min",
        "avg_response_time_min",
        "time_to_resolution_min",
        "backlog",
        "reopen_rate",
        "one_touch_resolution_rate",
        "csat",
        "nps",
    }
    assert brief <= set(ids), brief - set(ids)

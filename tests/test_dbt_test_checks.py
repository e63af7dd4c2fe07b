"""The dbt tests of a model report as one check on it, which names the tests that found rows;
the publication's guard takes a failure of WARN severity as no failure (hand-made dbt
artifacts and a one-asset job: no dbt build, no pipeline run)."""

import dagster as dg

from orchestration.assets.publication import checks_not_passed, run_check_results
from orchestration.assets.transformation import (
    DBT_TESTS_CHECK,
    build_errors,
    dbt_test_checks,
    selection,
)

DEALS = dg.AssetKey(["marts", "fct_deals"])
TICKETS = dg.AssetKey(["marts", "fct_tickets"])
SESSIONS = dg.AssetKey(["marts", "fct_web_sessions"])


def model(name: str) -> dict:
    return {
        "unique_id": f"model.boussole.{name}",
        "name": name,
        "resource_type": "model",
        "fqn": ["boussole", "marts", name],
        "config": {"schema": "marts"},
        "depends_on": {"nodes": []},
    }


def dbt_test(name: str, on: str) -> dict:
    return {
        "unique_id": f"test.boussole.{name}.0123456789",
        "name": name,
        "resource_type": "test",
        "fqn": ["boussole", "marts", name],
        "attached_node": f"model.boussole.{on}",
        "depends_on": {"nodes": [f"model.boussole.{on}"]},
    }


MANIFEST = {
    "nodes": {
        node["unique_id"]: node
        for node in [
            model("fct_deals"),
            model("fct_tickets"),
            model("fct_web_sessions"),
            dbt_test("not_null_fct_deals_amount_reporting", "fct_deals"),
            dbt_test("unique_fct_deals_deal_id", "fct_deals"),
            dbt_test("deal_amounts_are_plausible", "fct_deals"),
            dbt_test("unique_fct_tickets_ticket_id", "fct_tickets"),
            dbt_test("recent_tickets_have_replies", "fct_tickets"),
            dbt_test("unique_fct_web_sessions_session_key", "fct_web_sessions"),
        ]
    }
}


def result(name: str, status: str, failures: int | None = None, message: str = "") -> dict:
    unique_id = next(uid for uid, node in MANIFEST["nodes"].items() if node["name"] == name)
    return {"unique_id": unique_id, "status": status, "failures": failures, "message": message}


RUN_RESULTS = {
    "results": [
        result("fct_deals", "success"),
        result("not_null_fct_deals_amount_reporting", "fail", 1, "Got 1 result"),
        result("unique_fct_deals_deal_id", "pass", 0),
        result("deal_amounts_are_plausible", "warn", 3, "Got 3 results"),
        result("fct_tickets", "success"),
        result("unique_fct_tickets_ticket_id", "pass", 0),
        result("recent_tickets_have_replies", "warn", 2, "Got 2 results"),
        # Downstream of a failure: dbt skipped the model and its test.
        result("fct_web_sessions", "skipped"),
        result("unique_fct_web_sessions_session_key", "skipped"),
    ]
}
ALL_CHECKS = {dg.AssetCheckKey(key, DBT_TESTS_CHECK) for key in (DEALS, TICKETS, SESSIONS)}


def test_a_models_tests_report_as_one_check_naming_those_that_found_rows():
    checks = {c.asset_key: c for c in dbt_test_checks(MANIFEST, RUN_RESULTS, ALL_CHECKS)}
    # No test of fct_web_sessions ran: its check has no result (publication takes it as not run).
    assert set(checks) == {DEALS, TICKETS}
    deals, tickets = checks[DEALS], checks[TICKETS]
    assert (deals.check_name, deals.passed, deals.severity) == (
        DBT_TESTS_CHECK,
        False,
        dg.AssetCheckSeverity.ERROR,
    )
    assert deals.description == (
        "not_null_fct_deals_amount_reporting failed on 1 row; "
        "deal_amounts_are_plausible warned on 3 rows"
    )
    assert deals.metadata["tests"].value == 3
    assert deals.metadata["tests_with_rows"].value == 2
    # Only a test of severity warn found rows: a failure that blocks nothing.
    assert (tickets.passed, tickets.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert tickets.description == "recent_tickets_have_replies warned on 2 rows"


def test_only_the_selected_checks_report():
    selected = {dg.AssetCheckKey(TICKETS, DBT_TESTS_CHECK)}
    assert [c.asset_key for c in dbt_test_checks(MANIFEST, RUN_RESULTS, selected)] == [TICKETS]


def test_passing_tests_are_counted():
    run_results = {"results": [result("unique_fct_tickets_ticket_id", "pass", 0)]}
    (check,) = dbt_test_checks(MANIFEST, run_results, ALL_CHECKS)
    assert (check.passed, check.description) == (True, "1 dbt tests passed")


def test_a_subset_builds_its_models_and_runs_the_tests_of_its_checks_only():
    # From the UI: fct_deals without its check, and the check of fct_tickets alone.
    args = selection(MANIFEST, {DEALS}, {dg.AssetCheckKey(TICKETS, DBT_TESTS_CHECK)})
    assert args == [
        "--select",
        "boussole.marts.fct_deals",
        "boussole.marts.unique_fct_tickets_ticket_id",
        "boussole.marts.recent_tickets_have_replies",
        "--indirect-selection",
        "empty",
    ]


def test_a_failed_build_names_its_failed_nodes():
    assert build_errors(MANIFEST, RUN_RESULTS) == (
        "not_null_fct_deals_amount_reporting: Got 1 result"
    )


def test_publication_is_refused_by_a_failure_of_error_severity_only():
    guarded = dg.AssetKey("guarded")
    outcomes = {
        "fails": (False, dg.AssetCheckSeverity.ERROR),
        "warns": (False, dg.AssetCheckSeverity.WARN),
        "passes": (True, dg.AssetCheckSeverity.ERROR),
    }

    @dg.asset(
        key=guarded,
        check_specs=[dg.AssetCheckSpec(name, asset=guarded, blocking=True) for name in outcomes],
    )
    def guarded_asset(context: dg.AssetExecutionContext):
        yield dg.Output(None)
        for name, (passed, severity) in outcomes.items():
            yield dg.AssetCheckResult(
                check_name=name, passed=passed, severity=severity, description=f"{name} says so"
            )

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([guarded_asset], instance=instance, raise_on_error=False)
        results = run_check_results(
            instance,
            [result.run_id],
            # A check that is not in the run, as one left out of the selection.
            [dg.AssetCheckKey(guarded, name) for name in [*outcomes, "does_not_run"]],
        )
    problems = checks_not_passed(results)
    assert problems == [
        "fails on guarded (failed: fails says so)",
        "does_not_run on guarded (did not run)",
    ]
    # What the alerts are raised from: a WARN failure is a failure that blocks nothing.
    assert [(r.name, r.status, r.blocking) for r in results] == [
        ("fails on guarded", "failed", True),
        ("warns on guarded", "failed", False),
        ("passes on guarded", "passed", True),
        ("does_not_run on guarded", "could_not_run", True),
    ]

"""A restatement through `boussole run` and Dagster, with the policy on key KPIs on
(BOUSSOLE_REFUSE_KEY_RESTATEMENTS=1): refused, accepted with `boussole accept-restatements`,
then published with that acceptance. Runs on from a copy of the shared landing_small run
(conftest small_pipeline), as of 2026-02-02: January is complete.

Hand-worked from tests/fixtures/landing_small: January's revenue is deal 1's 1,200.00 EUR (its
version of crm/2026-01-07, won on 5 January) and deal 2's 500 USD at 0.92 (460.00, won on
7 January Paris time), 1,660.00 in all. A new CRM extract day, crm/2026-02-03, delivers deal 1
again at 1,500.00: revenue restated by +300 in every value that holds deal 1, the day of
5 January, the week of 5 January and the month of January, each in its eight slices (the
company total; owner 501; team (no team); pipeline Sales pipeline; product line Platform;
country and region (not set), deal currency EUR): 24 restatements of a key KPI. Average deal
size (revenue / deals won, a supporting KPI) is restated in the same 24 values, with no
acceptance needed.
"""

import getpass
import json

import dagster as dg
import duckdb
import pytest

from tests.conftest import all_kpi_rows, copy_workspace
from tests.test_restatements import deal_1_corrected

pytestmark = [pytest.mark.e2e, pytest.mark.apart]

CORRECTION = "crm/2026-02-03/deals.jsonl"
REASON = "deal 1 was entered 1,200 instead of 1,500"
JANUARY = "revenue (month 2026-01-01): 1660.0 -> 1960.0"
DEAL_1 = f"raw_crm.deals id 1 ({CORRECTION}:1, corrected: properties.amount, updatedAt)"


def query(path, sql, params=()):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_restated_key_kpi_is_refused_then_accepted_then_published_through_dagster(
    small_pipeline, tmp_path, monkeypatch
):
    workspace = copy_workspace(small_pipeline[0], tmp_path)
    # The copy's own settings (the shared run's dict stays as it is).
    workspace.settings = {**workspace.settings, "BOUSSOLE_REFUSE_KEY_RESTATEMENTS": "1"}
    history = workspace.data / "history" / "publications.duckdb"
    served, values_before = workspace.published.read_bytes(), all_kpi_rows(workspace.published)
    assert ("revenue", 1660.0) in query(
        workspace.published,
        "select kpi_id, value from kpi_values where kpi_id = 'revenue' and grain = 'month' "
        "and period_start = '2026-01-01' and dimension = 'all'",
    )
    landed = workspace.landing / CORRECTION
    landed.parent.mkdir(parents=True)
    landed.write_text(json.dumps(deal_1_corrected()) + "\n")

    # 1. Refused at publication: the served mart is left as it was, and the run says why.
    refused = workspace.boussole("run")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "extract dates 2026-02-03 to 2026-02-03" in refused.stdout
    assert "Publication refused: the published mart is unchanged." in refused.stderr
    assert workspace.published.read_bytes() == served
    assert all_kpi_rows(workspace.published) == values_before
    (failure,) = [
        line for line in refused.stderr.splitlines() if line.startswith("  - step published_mart")
    ]
    # Months and company totals first: January's revenue, its old and new value.
    assert failure.startswith(
        "  - step published_mart failed: boussole.restatements.RestatementsRefused: "
        "24 restatement(s) of key KPIs wait for acceptance (BOUSSOLE_REFUSE_KEY_RESTATEMENTS "
        f"is on): {JANUARY}; revenue (month 2026-01-01, country (not set)): 1660.0 -> 1960.0; "
    )
    assert failure.endswith("; ...; accept them with: boussole accept-restatements --reason '...'")
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    refused_run = next(
        line.removeprefix("Dagster run ")
        for line in refused.stderr.splitlines()
        if line.startswith("Dagster run ")
    )
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(refused_run).status == dg.DagsterRunStatus.FAILURE
        failures = instance.get_records_for_run(
            refused_run, of_type=dg.DagsterEventType.STEP_FAILURE
        ).records
    (step_failure,) = [record.event_log_entry.dagster_event for record in failures]
    assert step_failure.step_key == "published_mart"
    assert step_failure.event_specific_data.user_failure_data.description.startswith(
        "Publication refused, the published mart is unchanged: 24 restatement(s) of key KPIs "
        f"wait for acceptance (BOUSSOLE_REFUSE_KEY_RESTATEMENTS is on): {JANUARY}; "
    )
    # The refusal is kept in the history, for `boussole accept-restatements`.
    # Every value holding deal 1 moves by its +300.00, in its eight slices.
    assert query(
        history,
        "select kpi_id, grain, count(*), min(new_value - old_value), max(new_value - old_value) "
        "from restatement_refusals where refused_in_run = ? group by all order by all",
        [refused_run],
    ) == [("revenue", grain, 8, 300.0, 300.0) for grain in ("day", "month", "week")]

    # 2. Accepted: who (the OS user) and why.
    accepted = workspace.boussole("accept-restatements", "--reason", REASON)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "Accepted (24), the next `boussole run` publishes them:" in accepted.stdout
    assert f"  - {JANUARY}" in accepted.stdout.splitlines()
    assert query(
        history, "select accepted_by, reason, count(*) from restatement_acceptances group by all"
    ) == [(getpass.getuser(), REASON, 24)]

    # 3. The next run publishes them, and says so at its end and in Dagster's metadata.
    published = workspace.boussole("run")
    assert published.returncode == 0, published.stdout + published.stderr
    summary = published.stdout[published.stdout.index("Restated (published; ") :]
    accepted_line = f"{JANUARY}; accepted by {getpass.getuser()}: {REASON}; causes: {DEAL_1}"
    assert summary.splitlines()[1] == f"  - {accepted_line}"
    with dg.DagsterInstance.get() as instance:
        published_run = instance.get_runs(limit=1)[0]
        event = instance.get_latest_materialization_event(dg.AssetKey("published_mart"))
    assert published_run.status == dg.DagsterRunStatus.SUCCESS
    assert event.run_id == published_run.run_id
    metadata = event.asset_materialization.metadata
    # Revenue's 24 and average deal size's 24.
    assert metadata["restatements"].value == 48
    assert metadata["restated_values"].value.splitlines()[0] == f"- {accepted_line}"

    # The published row of January's revenue: replaced value, acceptance, and its cause.
    ((restatement_id, *row),) = query(
        workspace.published,
        "select restatement_id, tier, old_value, new_value, detected_in_run, accepted_by, "
        "acceptance_reason, causes from kpi_restatements where kpi_id = 'revenue' "
        "and grain = 'month' and period_start = '2026-01-01' and dimension = 'all'",
    )
    assert row == [
        "key",
        1660.0,
        1960.0,
        published_run.run_id,
        getpass.getuser(),
        REASON,
        DEAL_1,
    ]
    assert query(
        workspace.published,
        "select source_object, record_id, file_path, record_number, cause, fields_changed "
        "from kpi_restatement_causes where restatement_id = ?",
        [restatement_id],
    ) == [("raw_crm.deals", "1", CORRECTION, 1, "corrected", "properties.amount, updatedAt")]
    # Only key KPIs wait for acceptance: average deal size's restatements went out without one.
    assert query(
        workspace.published,
        "select kpi_id, tier, accepted_by is not null, count(*) from kpi_restatements "
        "group by all order by all",
    ) == [("average_deal_size", "supporting", False, 24), ("revenue", "key", True, 24)]
    assert ("revenue", 1960.0) in query(
        workspace.published,
        "select kpi_id, value from kpi_values where kpi_id = 'revenue' and grain = 'month' "
        "and period_start = '2026-01-01' and dimension = 'all'",
    )

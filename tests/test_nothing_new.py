"""A run with nothing new leaves the published mart as it is, and never publishes without the
audit (boussole/audit_scope.py): `boussole run` stops before Dagster, and a run over dates
whose files were all read builds, audits and publishes nothing."""

import dagster as dg
import pytest
from dagster import DagsterInstance

from tests.conftest import copy_workspace

# Runs on from a copy of the landing_small run (conftest small_pipeline).
pytestmark = pytest.mark.apart

LAST_DAY = "2026-02-02"


def runs(workspace, monkeypatch) -> list:
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with DagsterInstance.get() as instance:
        return [
            (
                run.run_id,
                {s.step_key: s.status.value for s in instance.get_run_step_stats(run.run_id)},
            )
            for run in instance.get_runs()
        ]


def test_a_run_with_nothing_new_leaves_the_published_mart_as_it_is(
    small_pipeline, tmp_path, monkeypatch
):
    workspace = copy_workspace(small_pipeline[0], tmp_path)
    published = workspace.published.stat().st_mtime_ns
    before = runs(workspace, monkeypatch)

    # Every landed file was read, and the mart was built, audited and published from them:
    # no Dagster run at all.
    idle = workspace.boussole("run")
    assert idle.returncode == 0, idle.stdout + idle.stderr
    assert "Nothing new in" in idle.stdout and "it is unchanged" in idle.stdout
    assert f"Published mart: {workspace.published}" in idle.stdout
    assert runs(workspace, monkeypatch) == before
    assert workspace.published.stat().st_mtime_ns == published

    # Over a date named on the command line: its files are read again (nothing new), then the
    # dbt step finds the build of the published mart current and materialises nothing, so
    # neither the Great Expectations suites nor the publication run.
    again = workspace.boussole("run", "--start", LAST_DAY, "--end", LAST_DAY)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing new since the mart was built, audited and published" in again.stdout
    assert workspace.published.stat().st_mtime_ns == published
    (run_id, steps), *_ = runs(workspace, monkeypatch)
    assert steps["dbt_models"] == "SUCCESS"
    assert steps["great_expectations_suites"] == steps["published_mart"] == "SKIPPED"
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with DagsterInstance.get() as instance:
        evaluations = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        materialized = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
    assert {r.event_log_entry.dagster_event.asset_key.path[0] for r in materialized} == {"raw"}
    # Only the ingestion's own (warning) checks: no dbt test or suite ran, none is reported.
    assert {
        r.event_log_entry.dagster_event.event_specific_data.check_name for r in evaluations
    } == {"landed_files_readable"}

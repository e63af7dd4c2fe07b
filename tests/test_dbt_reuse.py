"""Builds reuse the views and reference models that did not change (boussole/dbt_reuse.py),
and tables are replaced in one transaction (macros/materializations/table.sql).

Whether a relation was rebuilt is read from the warehouse itself: a comment set on it between
two runs survives only if the second run left it alone (no model sets comments). Seeds are
reloaded into the same table, which keeps its comment: they are left out of that check.
"""

import json
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest
from dagster import DagsterInstance

from boussole.audit_scope import forget_publication
from boussole.dbt_manifest import MANIFEST_PATH, ensure_manifest
from boussole.dbt_reuse import SETTINGS_DIGEST, Reuse, plan_reuse
from boussole.settings import Settings
from tests.conftest import all_kpi_rows, copy_workspace, run_dbt

# Runs on from a copy of the landing_small run (conftest small_pipeline).
pytestmark = pytest.mark.apart

MARK = "set between the two runs"
REUSABLE = {
    ("marts", "dim_date"): "table",
    ("kpi", "kpi_catalogue"): "table",
    ("staging", "stg_crm__calls"): "view",
    ("kpi", "kpi_sales"): "view",
}
# Tables of data, and the periods, which depend on the as-of date.
REBUILT = {
    ("marts", "fct_tickets"): "table",
    ("kpi", "int_kpi__periods"): "table",
}


def mark(warehouse, relations: dict[tuple[str, str], str]) -> None:
    with duckdb.connect(str(warehouse)) as conn:
        for (schema, name), kind in relations.items():
            conn.execute(f"comment on {kind} {schema}.{name} is '{MARK}'")


def marked(warehouse) -> set[tuple[str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            "select schema_name, table_name from duckdb_tables() where comment = ? "
            "union all select schema_name, view_name from duckdb_views() where comment = ?",
            [MARK, MARK],
        ).fetchall()
    return set(rows)


def test_a_second_run_reuses_what_did_not_change_and_publishes_the_same_values(
    small_pipeline, tmp_path, monkeypatch
):
    # A copy of the workspace after a first run: in another folder, which must not matter.
    workspace = copy_workspace(small_pipeline[0], tmp_path)
    warehouse = workspace.data / "build" / "warehouse.duckdb"
    assert (workspace.data / "build" / "dbt_state" / "manifest.json").exists()

    mark(warehouse, REUSABLE | REBUILT)
    published_before = workspace.published.stat().st_mtime_ns
    values_before = all_kpi_rows(workspace.published)
    # Nothing is new: a run would leave the published mart as it is (tests/test_nothing_new.py)
    # unless nothing tells that the mart is the warehouse's build, as after a publication
    # killed before it recorded itself. Then the run builds, audits and publishes again.
    settings = Settings.from_env(workspace.env)
    forget_publication(settings)
    second = workspace.boussole("run")
    assert second.returncode == 0, second.stdout + second.stderr
    assert marked(warehouse) == set(REUSABLE)
    assert all_kpi_rows(workspace.published) == values_before
    # Published again: every guarding check passed in this run, those on reused relations
    # too, and the reused assets count as materialised by it (publication depends on them).
    assert workspace.published.stat().st_mtime_ns > published_before
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with DagsterInstance.get() as instance:
        latest_run = instance.get_runs(limit=1)[0].run_id
        for schema, name in REUSABLE:
            event = instance.get_latest_materialization_event(dg.AssetKey([schema, name]))
            assert event.run_id == latest_run, (schema, name)
            assert "reused" in event.asset_materialization.metadata, (schema, name)
        built, checked = (
            [
                record.event_log_entry
                for record in instance.get_records_for_run(latest_run, of_type=kind).records
                if record.event_log_entry.step_key == "dbt_models"
            ]
            for kind in (
                dg.DagsterEventType.ASSET_MATERIALIZATION,
                dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            )
        )
    # Each relation built reports its row count as the warehouse holds it (a view none), and
    # was reported as dbt finished it: the first ones before dbt's last node ended.
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = {
            (schema, name): conn.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            for schema, name in conn.execute(
                "select schema_name, table_name from duckdb_tables()"
            ).fetchall()
        }
    counted = {}
    for entry in built:
        materialization = entry.dagster_event.event_specific_data.materialization
        relation = tuple(materialization.asset_key.path)
        if "reused" not in materialization.metadata:
            row_count = materialization.metadata.get("dagster/row_count")
            counted[relation] = None if row_count is None else row_count.value
    assert counted == {relation: tables.get(relation) for relation in counted}
    assert sum(count is not None for count in counted.values()) >= 30
    results = json.loads(
        max((workspace.data / "dbt" / "duckdb").glob("*/run_results.json")).read_text()
    )
    last_node_end = max(
        datetime.fromisoformat(timing["completed_at"]).replace(tzinfo=UTC).timestamp()
        for result in results["results"]
        for timing in result["timing"]
        if timing["name"] == "execute"
    )
    assert min(entry.timestamp for entry in built) < last_node_end
    # So was each model's check, once all its tests had passed: as many as dbt's run results
    # count for it.
    manifest = json.loads(
        max((workspace.data / "dbt" / "duckdb").glob("*/manifest.json")).read_text()
    )
    tests_of, found_rows = Counter(), set()
    for result in results["results"]:
        node = manifest["nodes"].get(result["unique_id"], {})
        if node.get("resource_type") == "test" and node.get("attached_node") in manifest["nodes"]:
            model = manifest["nodes"][node["attached_node"]]["name"]
            tests_of[model] += 1
            if result["status"] != "pass":
                found_rows.add(model)
    evaluations = {
        entry.dagster_event.event_specific_data.asset_key.path[-1]: (
            entry.dagster_event.event_specific_data
        )
        for entry in checked
    }
    assert {model: e.metadata["tests"].value for model, e in evaluations.items()} == dict(tests_of)
    assert {model for model, e in evaluations.items() if not e.passed} == found_rows
    assert min(entry.timestamp for entry in checked) < last_node_end

    # A relation of the last build has gone: nothing is reused, so the next build makes every
    # relation again. Read from the plan the dbt step makes of the state the run left.
    state = settings.dbt_state_dir
    digest = (state / SETTINGS_DIGEST).read_text().strip()
    with duckdb.connect(str(warehouse)) as conn:
        assert plan_reuse(state, digest, conn).dbt_args[:2] == ["--state", str(state)]
        conn.execute("drop view staging.stg_crm__calls")
        assert plan_reuse(state, digest, conn) == Reuse(
            [], "relations of the last build are missing: staging.stg_crm__calls"
        )


def test_a_run_of_one_model_builds_it_alone_and_forgets_the_state(
    small_pipeline, tmp_path, monkeypatch
):
    """One model materialised from the Dagster CLI (as from the UI), with nothing new since the
    last publication: the model is built and its own checks run, nothing else is touched, and
    the recorded state of the whole warehouse is dropped (the next run rebuilds everything)."""
    workspace = copy_workspace(small_pipeline[0], tmp_path)
    warehouse = workspace.data / "build" / "warehouse.duckdb"
    state = Settings.from_env(workspace.env).dbt_state_dir
    assert (state / "manifest.json").exists()
    mark(warehouse, REUSABLE | REBUILT)
    served = workspace.published.read_bytes()

    materialised = workspace.python(
        *("-m", "dagster", "asset", "materialize", "-m", "orchestration.definitions"),
        *("--select", "marts/fct_tickets"),
    )
    assert materialised.returncode == 0, materialised.stderr[-3000:]
    # In one process, as every run of the project's Definitions (not a process per step).
    assert "Executing steps in process" in materialised.stderr

    assert marked(warehouse) == set(REUSABLE | REBUILT) - {("marts", "fct_tickets")}
    assert not state.exists()
    assert workspace.published.read_bytes() == served
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with DagsterInstance.get() as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
        built, checked = (
            [
                record.event_log_entry.dagster_event.event_specific_data
                for record in instance.get_records_for_run(run_id, of_type=kind).records
            ]
            for kind in (
                dg.DagsterEventType.ASSET_MATERIALIZATION,
                dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            )
        )
    assert [m.materialization.asset_key for m in built] == [dg.AssetKey(["marts", "fct_tickets"])]
    assert sorted((c.asset_key.to_user_string(), c.check_name, c.passed) for c in checked) == [
        ("marts/fct_tickets", "dbt_tests", True),
        ("marts/fct_tickets", "gx_fct_tickets", True),
    ]


def test_reference_models_are_built_from_the_project_alone():
    """A reference model is reused while its definition is unchanged, so it may read no
    source (its data would change) and not the as-of date (it changes every day)."""
    ensure_manifest(Settings.from_env())
    manifest = json.loads(MANIFEST_PATH.read_text())
    nodes, macros = manifest["nodes"], manifest["macros"]

    def ancestors(unique_id: str) -> set[str]:
        found: set[str] = set()
        pending = list(nodes[unique_id]["depends_on"].get("nodes", []))
        while pending:
            parent = pending.pop()
            if parent not in found:
                found.add(parent)
                pending.extend(nodes.get(parent, {}).get("depends_on", {}).get("nodes", []))
        return found

    def macro_code(unique_ids: list[str]) -> str:
        code, pending, seen = [], list(unique_ids), set()
        while pending:
            macro = macros.get(pending.pop())
            if macro and macro["unique_id"] not in seen:
                seen.add(macro["unique_id"])
                code.append(macro["macro_sql"])
                pending.extend(macro["depends_on"]["macros"])
        return "\n".join(code)

    reference = [uid for uid, node in nodes.items() if "reference" in node["tags"]]
    assert {"model.boussole.dim_date", "model.boussole.kpi_catalogue"} <= set(reference)
    assert "seed.boussole.kpi_targets" in reference
    for unique_id in reference:
        node = nodes[unique_id]
        assert not [a for a in ancestors(unique_id) if a.startswith("source.")], unique_id
        code = node.get("raw_code", "") + macro_code(node.get("depends_on", {}).get("macros", []))
        assert "as_of_date" not in code, unique_id
    # The periods read the as-of date: they are not reference data.
    assert "reference" not in nodes["model.boussole.int_kpi__periods"]["tags"]


def test_a_failed_table_build_leaves_the_table_as_it_was(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"

    def build_calendar(calendar_start: str):
        return run_dbt(
            *("run", "--select", "dim_date"),
            warehouse=warehouse,
            target=tmp_path / "target",
            pii_key="test-key-for-boussole-tests",
            dbt_vars={"calendar_start": calendar_start},
        )

    built = build_calendar("2026-01-01")
    assert built.returncode == 0, built.stdout + built.stderr
    # The calendar runs to the default calendar_end, 2035-12-31: 10 years, 2 of them leap.
    expected_days = 10 * 365 + 2
    failed = build_calendar("not a date")
    assert failed.returncode != 0
    assert "not a date" in failed.stdout
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("select count(*) from marts.dim_date").fetchall() == [(expected_days,)]
        relations = conn.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    assert relations == [("marts", "dim_date")]

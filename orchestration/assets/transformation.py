"""dbt models as Dagster assets: staging, intermediate, marts, kpi (and semantic) groups. The
dbt tests of each model report as one blocking asset check on it (DBT_TESTS_CHECK), which names
the tests that failed. The step runs dbt itself (boussole/dbt_invocation.py) and reads what it
built and tested from its run results."""

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from boussole.audit_scope import current_build_digest, current_publication, record_build
from boussole.dbt_invocation import warehouse_build
from boussole.dbt_reuse import reused_nodes, upstream_nodes
from boussole.pii_key import KeyRefused, claim_key, finish_rotation
from boussole.settings import DBT_PROJECT_DIR
from boussole.sql import quote_identifier
from data_quality.runner import import_in_background
from orchestration.assets.ingestion import LOAD_MANIFEST_KEY, WAREHOUSE_POOL, raw_asset_key
from orchestration.quarantine import dbt_build_failure
from orchestration.resources import SettingsResource, WarehouseResource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The check on each model that its dbt tests report as. One check per test would cost three
# Dagster events per test and run (planned, output, evaluation), each written on its own to
# the instance: with some 330 tests, more than half of a daily run's time.
DBT_TESTS_CHECK = "dbt_tests"
# dbt's statuses of a node that failed: a test of error severity that found rows, or a node
# that could not run.
FAILED_STATUSES = ("fail", "error")


def tested_node(test: Mapping[str, Any]) -> str | None:
    """The node a dbt test checks: its attached node (generic tests), or its one parent."""
    parents = test["depends_on"]["nodes"]
    return test.get("attached_node") or (parents[0] if len(parents) == 1 else None)


def tested_key(manifest: Mapping[str, Any], test: Mapping[str, Any]) -> dg.AssetKey | None:
    """The asset of the model or seed a dbt test checks, if any."""
    tested = manifest["nodes"].get(tested_node(test) or "")
    return None if tested is None else DBT_TRANSLATOR.get_asset_key(tested)


class BoussoleDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the raw tables of the ingestion assets (and their load manifest);
    models group by layer; the tests of a model are its DBT_TESTS_CHECK."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            if dbt_resource_props["source_name"] == "ingestion":
                return LOAD_MANIFEST_KEY
            return raw_asset_key(dbt_resource_props["source_name"], dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference_data"
        fqn = dbt_resource_props.get("fqn", [])
        # fqn = [project, layer, ...]: staging, intermediate, marts, kpi or semantic
        return fqn[1] if len(fqn) > 2 else "dbt"

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        # Asked for each test of the model (and of the models it relates to): every test of
        # the model gives the same check.
        if tested_key(manifest, manifest["nodes"][unique_id]) != asset_spec.key:
            return None
        return dg.AssetCheckSpec(
            name=DBT_TESTS_CHECK,
            asset=asset_spec.key,
            # A result fails with WARN severity, which blocks nothing, when only tests of
            # severity warn found rows.
            blocking=True,
            description="The dbt tests of the model (schema YAML): fails naming those that "
            "found rows.",
        )


DBT_TRANSLATOR = BoussoleDbtTranslator()


class DbtBuildConfig(dg.Config):
    """Run configuration of the dbt step (UI launchpad, or `boussole run --full-refresh`)."""

    # Rebuild the incremental models from all raw rows instead of the new ones: after a change
    # of their logic, or of reference data older rows were built with (FX rates delivered late
    # for past web transactions).
    full_refresh: bool = False
    # Make every pseudonym again under the key of BOUSSOLE_PII_KEY although the warehouse's
    # were made with another (`boussole rotate-key`): a full refresh of the whole project.
    rotate_key: bool = False


def build_dbt_models(manifest: Mapping[str, Any]) -> dg.AssetsDefinition:
    """The dbt models of `manifest` (boussole/dbt_manifest.py prepares it) as one asset
    definition, built by one `dbt build`."""

    @dbt_assets(
        manifest=manifest,
        project=dbt_project,
        dagster_dbt_translator=DBT_TRANSLATOR,
        pool=WAREHOUSE_POOL,
    )
    def dbt_models(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        settings: SettingsResource,
        config: DbtBuildConfig,
    ):
        yield from dbt_build(context, manifest, warehouse, settings, config)

    return dbt_models


def dbt_build(
    context: dg.AssetExecutionContext,
    manifest: Mapping[str, Any],
    warehouse: WarehouseResource,
    settings: SettingsResource,
    config: DbtBuildConfig,
) -> Iterator:
    # A selection of models leaves the others as they were: its manifest cannot be the
    # state of the whole warehouse, and the state it replaces is no longer true.
    whole_project = context.selected_asset_keys == set(context.assets_def.keys) and (
        context.selected_asset_check_keys == set(context.assets_def.check_keys)
    )
    if config.rotate_key:
        if not whole_project:
            raise dg.Failure(description="A key rotation makes every model again: select them all")
        config = config.model_copy(update={"full_refresh": True})
    # Pseudonyms are made here: never with the public key on real data, never with another key
    # than the warehouse's unless on purpose (boussole/pii_key.py).
    with warehouse.connect() as conn:
        try:
            context.log.info(claim_key(settings.get(), conn, rotating=config.rotate_key))
        except KeyRefused as refused:
            raise dg.Failure(description=str(refused)) from None
    # What the build reads (files loaded, project, settings): the same as the build that the
    # served mart was published from means nothing to build, audit or publish. The step then
    # materialises nothing, so the checks and the publication after it do not run either.
    digest = current_build_digest(settings.get())
    published_by = current_publication(settings.get(), digest)
    if published_by and whole_project and not config.full_refresh:
        context.log.info(
            f"Nothing new since run {published_by} built, audited and published the mart "
            "(same files loaded, dbt project, suites and settings): it stays as it is"
        )
        return
    no_reuse = None
    if config.full_refresh:
        no_reuse = "full refresh"
    elif not whole_project:
        no_reuse = "a selection of models is built"
    with warehouse_build(settings.get(), no_reuse) as build:
        context.log.info(f"KPIs as of {build.as_of_date} (the latest extract date loaded)")
        if config.full_refresh:
            context.log.info("Full refresh: the incremental models are rebuilt from all raw rows")
        if not build.reuse.dbt_args:
            context.log.info(
                f"Every view and reference model selected is rebuilt: {build.reuse.reason}"
            )
        if build.test_scope.reason:
            context.log.info(f"Every row is tested: {build.test_scope.reason}")
        else:
            context.log.info("The tests of the incremental models check the rows this build writes")
        # The suites run right after this step: their library loads while dbt builds.
        import_in_background()
        target_path = build.invocation.new_target_path()
        # dbt's log goes to this process's output (the run's step log, the UI's compute logs),
        # as plain text.
        completed = build.run(
            "build",
            "--no-use-colors",
            *(["--full-refresh"] if config.full_refresh else []),
            *(
                []
                if whole_project
                else selection(
                    manifest, context.selected_asset_keys, context.selected_asset_check_keys
                )
            ),
            target_path=target_path,
        )
    if not (target_path / "run_results.json").exists():  # dbt stopped before running a node
        raise dbt_build_failure(
            context,
            f"dbt build failed: see {target_path / 'dbt.log'}",
            warehouse.path_obj,
            target_path,
        )
    built_manifest = json.loads((target_path / "manifest.json").read_text())
    run_results = json.loads((target_path / "run_results.json").read_text())
    # DuckDB has one writer: the row counts are read once dbt has exited and released the file.
    with warehouse.connect(read_only=True) as conn:
        row_counts = table_row_counts(conn)
        run_results = with_broken_rules(conn, built_manifest, run_results)
    events = built_outputs(context, built_manifest, run_results, row_counts)
    if build.reuse.dbt_args:
        reused = reused_nodes(built_manifest, run_results)
        events = with_reused_outputs(context, events, reused, built_manifest)
        context.log.info(
            f"{len(reused)} views and reference models reused, unchanged since the last build "
            "(their tests ran)"
        )
    yield from events
    yield from dbt_test_checks(built_manifest, run_results, context.selected_asset_check_keys)
    if completed.returncode != 0:
        # Names the raw records behind the failed nodes, and how to quarantine them.
        raise dbt_build_failure(
            context,
            f"dbt build failed: {build_errors(built_manifest, run_results)}",
            warehouse.path_obj,
            target_path,
        )
    if whole_project:
        build.record(target_path / "manifest.json")
        record_build(settings.get().dbt_state_dir, digest, context.run_id)
        with warehouse.connect() as conn:
            finish_rotation(conn)


def delete_insert_keys(manifest: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The relations that incremental models build with dbt's delete+insert strategy, each
    with its unique key: the publication publishes their changes only."""
    keys = {}
    for node in manifest["nodes"].values():
        config = node.get("config", {})
        if config.get("materialized") == "incremental" and (
            config.get("incremental_strategy") == "delete+insert"
        ):
            key = config["unique_key"]
            keys[node["alias"]] = (key,) if isinstance(key, str) else tuple(key)
    return keys


def selection(
    manifest: Mapping[str, Any],
    assets: AbstractSet[dg.AssetKey],
    checks: AbstractSet[dg.AssetCheckKey],
) -> list[str]:
    """dbt's selection of a subset of the step (launched from the UI): the models of `assets`,
    and the tests of the models whose check is in `checks` (and no other)."""
    checked = {key.asset_key for key in checks}
    names = [
        ".".join(node["fqn"])
        for node in manifest["nodes"].values()
        if (
            tested_key(manifest, node) in checked
            if node["resource_type"] == "test"
            else DBT_TRANSLATOR.get_asset_key(node) in assets
        )
    ]
    return ["--select", *names, "--indirect-selection", "empty"]


def built_outputs(
    context: dg.AssetExecutionContext,
    manifest: Mapping[str, Any],
    run_results: Mapping[str, Any],
    row_counts: dict[tuple[str, str], int],
) -> list[dg.Output]:
    """An output for each model and seed the build made, in the order dbt made them."""
    output_names = {key: name for name, key in context.assets_def.keys_by_output_name.items()}
    outputs = []
    for result in run_results["results"]:
        node = manifest["nodes"].get(result["unique_id"])
        if node is None or node["resource_type"] not in ("model", "seed"):
            continue
        key = DBT_TRANSLATOR.get_asset_key(node)
        if result["status"] != "success" or key not in context.selected_asset_keys:
            continue
        count = row_counts.get(tuple(key.path))
        outputs.append(
            dg.Output(
                None,
                output_name=output_names[key],
                metadata={
                    "unique_id": node["unique_id"],
                    "execution_duration": result["execution_time"],
                    **({} if count is None else {"dagster/row_count": count}),
                },
            )
        )
    return outputs


def dbt_test_checks(
    manifest: Mapping[str, Any],
    run_results: Mapping[str, Any],
    selected: AbstractSet[dg.AssetCheckKey],
) -> Iterator[dg.AssetCheckResult]:
    """The DBT_TESTS_CHECK of each model whose tests ran: passed when none found rows, of
    ERROR severity when one of severity error did (WARN when only those of severity warn
    did), naming them."""
    by_model: dict[dg.AssetKey, list[Mapping[str, Any]]] = defaultdict(list)
    for result in run_results["results"]:
        test = manifest["nodes"].get(result["unique_id"])
        if test is None or test["resource_type"] != "test" or result["status"] == "skipped":
            continue
        key = tested_key(manifest, test)
        if key is not None:
            by_model[key].append({**result, "name": test["name"]})
    for key, results in by_model.items():
        if dg.AssetCheckKey(key, DBT_TESTS_CHECK) not in selected:
            continue
        found = [r for r in results if r["status"] != "pass"]
        described = [f"{r['name']} {_outcome(r)}" for r in found]
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=DBT_TESTS_CHECK,
            passed=not found,
            severity=(
                dg.AssetCheckSeverity.ERROR
                if any(r["status"] in FAILED_STATUSES for r in found)
                else dg.AssetCheckSeverity.WARN
            ),
            description="; ".join(described) or f"{len(results)} dbt tests passed",
            metadata={
                "tests": len(results),
                "tests_with_rows": len(found),
                "results": dg.MetadataValue.md(
                    "\n".join(
                        ["| dbt test | status | failing rows |", "|---|---|---|"]
                        + [
                            f"| {r['name']} | {r['status']} | {r.get('failures') or ''} |"
                            for r in sorted(results, key=lambda r: r["name"])
                        ]
                    )
                ),
            },
        )


def _outcome(result: Mapping[str, Any]) -> str:
    if result["status"] == "error":
        return f"could not run: {result.get('message')}"
    rows = result.get("failures")
    return (
        f"{'failed' if result['status'] == 'fail' else 'warned'} on {rows} row{'s' * (rows != 1)}"
        + (f" ({result['broken_rules']})" if result.get("broken_rules") else "")
    )


def build_errors(manifest: Mapping[str, Any], run_results: Mapping[str, Any]) -> str:
    """The nodes that failed, with dbt's message."""
    return "; ".join(
        f"{manifest['nodes'].get(r['unique_id'], {}).get('name', r['unique_id'])}: {r['message']}"
        + (f" ({r['broken_rules']})" if r.get("broken_rules") else "")
        for r in run_results["results"]
        if r["status"] in FAILED_STATUSES
    )


def with_broken_rules(
    conn: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any], run_results: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The run results, where a column_values test found rows, with the rules those rows break
    (`broken_rules`: "amount is negative: 2 rows"): one test holds all the column rules of a
    model (dbt_project/tests/generic/column_values.sql), so its name alone does not say which."""
    results = []
    for result in run_results["results"]:
        test = manifest["nodes"].get(result["unique_id"], {})
        if result["status"] in ("fail", "warn") and (
            test.get("test_metadata", {}).get("name") == "column_values"
        ):
            counted = conn.execute(
                f"select failed_rules, count(*) from ({result['compiled_code']}) "
                "group by all order by 2 desc, 1"
            ).fetchall()
            result = {
                **result,
                "broken_rules": "; ".join(
                    f"{rules}: {rows} row{'s' * (rows != 1)}" for rules, rows in counted
                ),
            }
        results.append(result)
    return {**run_results, "results": results}


def with_reused_outputs(
    context: dg.AssetExecutionContext,
    events: list,
    reused: list[Mapping[str, Any]],
    manifest: Mapping[str, Any],
) -> list:
    """The build's events with an output for each reused relation: it is current, so it is
    reported as materialised by this run and the assets downstream of it (publication) run.
    Dagster takes the outputs in dependency order: each comes before the first model built
    downstream of it, the others at the end."""
    asset_keys = {node["unique_id"]: DBT_TRANSLATOR.get_asset_key(node) for node in reused}
    output_names = {key: name for name, key in context.assets_def.keys_by_output_name.items()}
    unique_ids = {
        DBT_TRANSLATOR.get_asset_key(node): unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }
    upstream = upstream_nodes(manifest)

    def outputs(nodes: list[Mapping[str, Any]]) -> list[dg.Output]:
        return [
            dg.Output(
                None,
                output_name=output_names[asset_keys[node["unique_id"]]],
                metadata={"reused": "unchanged since the last build (boussole/dbt_reuse.py)"},
            )
            for node in nodes
        ]

    pending, ordered = list(reused), []
    for event in events:
        if isinstance(event, dg.Output):
            built = unique_ids[context.assets_def.keys_by_output_name[event.output_name]]
            ordered += outputs([n for n in pending if n["unique_id"] in upstream(built)])
            pending = [n for n in pending if n["unique_id"] not in upstream(built)]
        ordered.append(event)
    return ordered + outputs(pending)


def table_row_counts(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """Row counts of the materialised tables (views are skipped: counting re-runs them)."""
    tables = conn.execute(
        "select schema_name, table_name from duckdb_tables() where not temporary"
    ).fetchall()
    return {
        (schema, table): conn.execute(
            f"select count(*) from {quote_identifier(schema, table)}"
        ).fetchone()[0]
        for schema, table in tables
    }

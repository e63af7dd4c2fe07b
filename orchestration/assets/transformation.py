"""dbt models as Dagster assets: staging, intermediate, marts, kpi (and semantic) groups. The
dbt tests of each model report as one blocking asset check on it (DBT_TESTS_CHECK), which names
the tests that failed. The step runs dbt itself (boussole/dbt_invocation.py) and reports each
model and check as dbt finishes them (boussole/dbt_log.py), the failed tests from its run
results."""

import functools
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
from boussole.dbt_log import FinishedNode, finished_nodes
from boussole.dbt_reuse import models_in_order, reused_nodes, upstream_nodes
from boussole.pii_key import KeyRefused, claim_key, finish_rotation
from boussole.settings import DBT_PROJECT_DIR
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
# The metadata of a relation a build reused instead of rebuilding.
REUSED = {"reused": "unchanged since the last build (boussole/dbt_reuse.py)"}


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
        # In a run of some models, context.assets_def is that subset: the selection is compared
        # with the whole definition, this one.
        yield from dbt_build(context, manifest, warehouse, settings, config, dbt_models)

    return dbt_models


def dbt_build(
    context: dg.AssetExecutionContext,
    manifest: Mapping[str, Any],
    warehouse: WarehouseResource,
    settings: SettingsResource,
    config: DbtBuildConfig,
    every_model: dg.AssetsDefinition,
) -> Iterator:
    # A selection of models leaves the others as they were: its manifest cannot be the
    # state of the whole warehouse, and the state it replaces is no longer true.
    whole_project = context.selected_asset_keys == set(every_model.keys) and (
        context.selected_asset_check_keys == set(every_model.check_keys)
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
        # Each model is reported materialised as soon as dbt has built it, and checked as soon
        # as its tests passed, while dbt goes on: the UI shows the build as it runs, and the
        # step's events are written meanwhile instead of after.
        # dbt's log goes to this process's output (the run's step log, the UI's compute logs),
        # as plain text.
        dbt = build.follow(
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
        try:
            streamed = StreamedEvents(
                context,
                manifest,
                reuse=bool(build.reuse.dbt_args),
                # A selection may leave some tests of a model out.
                checks=context.selected_asset_check_keys if whole_project else set(),
            )
            for node in finished_nodes(dbt, echo=functools.partial(print, flush=True)):
                yield from streamed.finished(node)
            returncode = dbt.wait()
        finally:
            if dbt.poll() is None:  # the step stopped while dbt ran
                dbt.terminate()
                dbt.wait()
    if not (target_path / "run_results.json").exists():  # dbt stopped before running a node
        raise dbt_build_failure(
            context,
            f"dbt build failed: see {target_path / 'dbt.log'}",
            warehouse.path_obj,
            target_path,
        )
    built_manifest = json.loads((target_path / "manifest.json").read_text())
    run_results = json.loads((target_path / "run_results.json").read_text())
    if any(result["status"] in ("fail", "warn") for result in run_results["results"]):
        # DuckDB has one writer: the failing rows are read once dbt has exited.
        with warehouse.connect(read_only=True) as conn:
            run_results = with_broken_rules(conn, built_manifest, run_results)
    if build.reuse.dbt_args:
        reused = reused_nodes(built_manifest, run_results)
        yield from streamed.reused(reused)
        context.log.info(
            f"{len(reused)} views and reference models reused, unchanged since the last build "
            "(their tests ran)"
        )
    yield from dbt_test_checks(
        built_manifest, run_results, context.selected_asset_check_keys - streamed.checked
    )
    if returncode != 0:
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


class StreamedEvents:
    """What a build reports as dbt finishes its nodes: the output of each model and seed, with
    its row count (views have none), and the DBT_TESTS_CHECK of each model in `checks` once all
    its tests passed (one that found rows waits for the run results, which tell the rules its
    rows break). With `reuse`, the relations the build reused count as materialised by it too
    (boussole/dbt_reuse.py): Dagster takes outputs in dependency order, so each comes before
    the first node downstream of it that finishes, the others at the end. dbt runs a node once
    everything upstream of it is done, including what its selection leaves out: whatever is
    upstream and not reported yet was reused."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        manifest: Mapping[str, Any],
        reuse: bool,
        checks: AbstractSet[dg.AssetCheckKey],
    ):
        self.output_names = {
            key: name for name, key in context.assets_def.keys_by_output_name.items()
        }
        self.selected = context.selected_asset_keys
        self.nodes = manifest["nodes"]
        self.order = models_in_order(manifest)
        self.reuse = reuse
        self.upstream = upstream_nodes(manifest) if reuse else lambda _: frozenset()
        self.reported: set[str] = set()
        # The data tests of each model whose check is streamed, by the test's id.
        self.tested: dict[str, tuple[str, dg.AssetKey]] = {}
        self.tests: dict[dg.AssetKey, int] = defaultdict(int)
        for unique_id, node in self.nodes.items():
            key = tested_key(manifest, node) if node["resource_type"] == "test" else None
            if key is not None and dg.AssetCheckKey(key, DBT_TESTS_CHECK) in checks:
                self.tested[unique_id] = (tested_node(node), key)
                self.tests[key] += 1
        self.passed: dict[dg.AssetKey, list[Mapping[str, Any]]] = defaultdict(list)
        self.checked: set[dg.AssetCheckKey] = set()

    def _output(self, unique_id: str, metadata: dict[str, Any]) -> list[dg.Output]:
        key = DBT_TRANSLATOR.get_asset_key(self.nodes[unique_id])
        if key not in self.selected or unique_id in self.reported:
            return []
        self.reported.add(unique_id)
        return [dg.Output(None, output_name=self.output_names[key], metadata=metadata)]

    def _reused(self, unique_ids: AbstractSet[str]) -> list[dg.Output]:
        return [
            output
            for unique_id in self.order
            if unique_id in unique_ids
            for output in self._output(unique_id, REUSED)
        ]

    def finished(self, node: FinishedNode) -> list[dg.Output | dg.AssetCheckResult]:
        """What to report once dbt has finished `node`."""
        if node.unique_id in self.tested:
            return self._test_finished(node)
        if node.status != "success" or node.unique_id not in self.nodes:
            return []
        return [
            *self._reused(self.upstream(node.unique_id)),
            *self._output(
                node.unique_id,
                {
                    "unique_id": node.unique_id,
                    "execution_duration": node.execution_time,
                    **({} if node.row_count is None else {"dagster/row_count": node.row_count}),
                },
            ),
        ]

    def _test_finished(self, node: FinishedNode) -> list[dg.Output | dg.AssetCheckResult]:
        model, key = self.tested[node.unique_id]
        if node.status != "pass":
            self.tests.pop(key, None)  # its check comes from the run results
            return []
        if key not in self.tests:
            return []
        self.passed[key].append({"name": self.nodes[node.unique_id]["name"], "status": "pass"})
        if len(self.passed[key]) < self.tests[key]:
            return []
        self.checked.add(dg.AssetCheckKey(key, DBT_TESTS_CHECK))
        reused = self.upstream(model) | ({model} if self.reuse else set())
        return [*self._reused(reused), dbt_tests_check(key, self.passed[key])]

    def reused(self, nodes: list[Mapping[str, Any]]) -> list[dg.Output]:
        """The outputs of the reused `nodes` not reported yet."""
        return self._reused({node["unique_id"] for node in nodes})


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
        if dg.AssetCheckKey(key, DBT_TESTS_CHECK) in selected:
            yield dbt_tests_check(key, results)


def dbt_tests_check(key: dg.AssetKey, results: list[Mapping[str, Any]]) -> dg.AssetCheckResult:
    """The DBT_TESTS_CHECK of the model `key` from the `results` of its tests (each with the
    test's name, dbt's status and, when it found some, its failing rows)."""
    found = [r for r in results if r["status"] != "pass"]
    described = [f"{r['name']} {_outcome(r)}" for r in found]
    return dg.AssetCheckResult(
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

"""dbt models as Dagster assets: staging, intermediate and marts groups; dbt tests become
asset checks (error severity = blocking)."""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

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


class BoussoleDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the raw tables of the ingestion assets (and their load manifest);
    models group by layer."""

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
        # fqn = [project, layer, ...]: staging, intermediate or marts
        return fqn[1] if len(fqn) > 2 else "dbt"


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


def build_dbt_models(manifest: Path) -> dg.AssetsDefinition:
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
        dbt: DbtCliResource,
        warehouse: WarehouseResource,
        settings: SettingsResource,
        config: DbtBuildConfig,
    ):
        yield from dbt_build(context, dbt, warehouse, settings, config)

    return dbt_models


def dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
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
        with build.invocation.environment():
            invocation = dbt.cli(
                build.args("build", *(["--full-refresh"] if config.full_refresh else [])),
                context=context,
                raise_on_error=False,
                target_path=build.invocation.new_target_path(),
            )
        # The suites run right after this step: their library loads while dbt builds.
        import_in_background()
        # DuckDB has one writer: the row counts are read once dbt has exited and released the
        # file, through a connection this step closes (not dbt's adapter, which stays open).
        events = list(invocation.stream())
    with warehouse.connect(read_only=True) as conn:
        row_counts = table_row_counts(conn)
    if not invocation.is_successful():
        yield from with_row_counts(context, events, row_counts)
        # Names the raw records behind the failed nodes, and how to quarantine them.
        raise dbt_build_failure(
            context,
            f"dbt build failed: {invocation.get_error()}",
            warehouse.path_obj,
            invocation.target_path,
        )
    if build.reuse.dbt_args:
        manifest = invocation.get_artifact("manifest.json")
        reused = reused_nodes(manifest, invocation.get_artifact("run_results.json"))
        events = with_reused_outputs(context, events, reused, manifest)
        context.log.info(
            f"{len(reused)} views and reference models reused, unchanged since the last build "
            "(their tests ran)"
        )
    yield from with_row_counts(context, events, row_counts)
    if whole_project:
        build.record(invocation.target_path / "manifest.json")
        record_build(settings.get().dbt_state_dir, digest, context.run_id)
        with warehouse.connect() as conn:
            finish_rotation(conn)


def with_row_counts(
    context: dg.AssetExecutionContext, events: list, row_counts: dict[tuple[str, str], int]
) -> Iterator:
    for event in events:
        if isinstance(event, dg.Output):
            key = context.assets_def.keys_by_output_name[event.output_name]
            count = row_counts.get(tuple(key.path))
            if count is not None:
                event = event.with_metadata({**event.metadata, "dagster/row_count": count})
        yield event


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

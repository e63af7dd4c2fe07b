"""The Dagster code location loads and wires the layers together as the architecture says."""

import itertools
import json

import dagster as dg
import yaml

from boussole.dbt_manifest import MANIFEST_PATH
from boussole.ingestion.contracts import LANDING_OBJECTS
from orchestration.assets.transformation import DBT_TESTS_CHECK
from orchestration.definitions import defs
from tests.conftest import PROJECT_ROOT


def graph():
    return defs.resolve_asset_graph()


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)


def test_every_landing_object_is_an_ingestion_asset_and_a_dbt_source():
    keys = graph().get_all_asset_keys()
    for landing_object in LANDING_OBJECTS:
        assert dg.AssetKey(["raw", landing_object.source, landing_object.name]) in keys
    declared = set()
    for path in (PROJECT_ROOT / "dbt_project" / "models" / "staging").rglob("_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            declared |= {(source["name"], table["name"]) for table in source["tables"]}
    # Besides the landing objects, the ingestion's load manifest (new files for stg_web__events).
    landing = {(o.source, o.name) for o in LANDING_OBJECTS}
    assert declared == landing | {("ingestion", "load_manifest")}
    assert dg.AssetKey(["ingestion", "load_manifest"]) in keys


def test_lineage_runs_from_landing_to_published_mart():
    asset_graph = graph()
    upstream = asset_graph.get(dg.AssetKey("published_mart")).parent_keys
    assert dg.AssetKey(["kpi", "kpi_values"]) in upstream
    # raw -> staging -> intermediate -> marts for each of the three KPIs' sources
    chain = [
        dg.AssetKey(["raw", "support", "ticket_metrics"]),
        dg.AssetKey(["staging", "stg_support__ticket_metrics"]),
        dg.AssetKey(["marts", "fct_tickets"]),
        dg.AssetKey(["kpi", "int_kpi__values_from_rebuilt_facts"]),
        dg.AssetKey(["kpi", "int_kpi__values_from_facts"]),
        dg.AssetKey(["kpi", "int_kpi__all_values"]),
        dg.AssetKey(["kpi", "kpi_values"]),
    ]
    for parent, child in itertools.pairwise(chain):
        assert parent in asset_graph.get(child).parent_keys, (parent, child)


def test_assets_are_grouped_by_layer():
    groups = {node.key: node.group_name for node in graph().asset_nodes}
    assert groups[dg.AssetKey(["raw", "web", "events"])] == "ingestion"
    assert groups[dg.AssetKey(["staging", "stg_web__events"])] == "staging"
    assert groups[dg.AssetKey(["intermediate", "int_web__sessions"])] == "intermediate"
    assert groups[dg.AssetKey(["marts", "fct_deals"])] == "marts"
    assert groups[dg.AssetKey(["kpi", "kpi_values"])] == "kpi"
    assert groups[dg.AssetKey("published_mart")] == "publication"


def test_great_expectations_and_dbt_tests_are_blocking_checks_on_the_marts():
    check_specs = {
        spec.key: spec for assets_def in graph().assets_defs for spec in assets_def.check_specs
    }
    kpi_values = dg.AssetKey(["kpi", "kpi_values"])
    for suite, table in (
        ("gx_kpi_value_bounds", ["kpi", "kpi_values"]),
        ("gx_fct_tickets", ["marts", "fct_tickets"]),
        ("gx_fct_deals", ["marts", "fct_deals"]),
    ):
        assert check_specs[dg.AssetCheckKey(dg.AssetKey(table), suite)].blocking
    # The dbt tests of a model report as one blocking check on it: one for each model or seed
    # that the manifest gives a test.
    manifest = json.loads(MANIFEST_PATH.read_text())
    tested = {
        node["attached_node"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
    }
    dbt_checks = [spec for key, spec in check_specs.items() if key.name == DBT_TESTS_CHECK]
    assert len(dbt_checks) == len(tested) > 20
    assert all(spec.blocking for spec in dbt_checks)
    assert dg.AssetCheckKey(kpi_values, DBT_TESTS_CHECK) in check_specs


def test_the_job_covers_every_asset_and_check_and_automation_starts_it():
    asset_graph = graph()
    job = defs.resolve_job_def("boussole_pipeline")
    # Every asset that can be materialised, every asset check, and each of their steps.
    executable = {node.key for node in asset_graph.asset_nodes if node.is_executable}
    assert dg.AssetKey("published_mart") in executable and len(executable) > 80
    assert job.asset_layer.selected_asset_keys == executable
    assert job.asset_layer.asset_graph.asset_check_keys == asset_graph.asset_check_keys
    steps = {a.node_def.name for a in asset_graph.assets_defs if a.is_executable}
    assert set(job.graph.node_dict) == steps | {"great_expectations_suites"}
    # One partition per extract date, from BOUSSOLE_FIRST_EXTRACT_DATE (2024-01-01 by default).
    assert job.partitions_def.get_first_partition_key() == "2024-01-01"

    schedule = defs.resolve_schedule_def("boussole_daily")
    assert (schedule.job_name, schedule.cron_schedule, schedule.execution_timezone) == (
        "boussole_pipeline",
        "30 6 * * *",
        "Europe/Paris",
    )
    sensor = defs.resolve_sensor_def("landing_files_sensor")
    assert (sensor.job_name, sensor.minimum_interval_seconds) == ("boussole_pipeline", 60)
    assert "landing" in sensor.required_resource_keys


def test_every_warehouse_writer_shares_one_concurrency_pool():
    instance_config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert instance_config["concurrency"]["runs"]["max_concurrent_runs"] == 1
    assert instance_config["concurrency"]["pools"]["default_limit"] == 1
    assert instance_config["telemetry"]["enabled"] is False
    job = defs.resolve_job_def("boussole_pipeline")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert set(pools.values()) == {"duckdb_warehouse"}, pools

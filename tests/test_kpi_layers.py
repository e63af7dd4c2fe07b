"""The dbt layers run one way: staging -> intermediate -> marts (facts, dimensions) -> kpi
(the KPI layer: its steps int_kpi__*, then kpi_values, kpi_catalogue and the wide views) ->
semantic (the MetricFlow layer on the facts). A model reads its own layer or those upstream
of it, never one downstream, so that the Dagster graph reads left to right."""

import json
import subprocess

import dagster as dg

from boussole.dbt_invocation import DbtInvocation
from boussole.dbt_manifest import ensure_manifest, kpi_catalogue
from boussole.settings import Settings
from tests.conftest import BOUSSOLE

LAYERS = ("staging", "intermediate", "marts", "kpi", "semantic")


def models_and_parents() -> dict[str, tuple[str, list[str]]]:
    """{model: (its layer, the models it reads)} from the project's dbt manifest."""
    manifest = json.loads(ensure_manifest(Settings.from_env()).read_text())
    models = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }
    # fqn = [project, layer folder, ..., model]
    return {
        node["name"]: (
            node["fqn"][1],
            [models[parent]["name"] for parent in node["depends_on"]["nodes"] if parent in models],
        )
        for node in models.values()
    }


def test_every_model_reads_its_own_layer_or_one_upstream():
    models = models_and_parents()
    assert {layer for layer, _ in models.values()} <= set(LAYERS)
    backwards = [
        f"{name} ({layer}) reads {parent} ({models[parent][0]})"
        for name, (layer, parents) in models.items()
        for parent in parents
        if LAYERS.index(models[parent][0]) > LAYERS.index(layer)
    ]
    assert backwards == []


def test_the_kpi_layer_has_its_own_schema_and_dagster_group():
    from orchestration.definitions import defs

    groups = {node.key: node.group_name for node in defs.resolve_asset_graph().asset_nodes}
    kpi_models = [name for name, (layer, _) in models_and_parents().items() if layer == "kpi"]
    assert {"kpi_values", "kpi_catalogue", "int_kpi__all_values"} <= set(kpi_models)
    assert {groups[dg.AssetKey(["kpi", name])] for name in kpi_models} == {"kpi"}


def test_the_kpi_models_ref_exactly_the_models_the_catalogue_reads():
    """dbt needs a model's refs when it parses it, before the catalogue can be read: the dbt
    invocation passes the models the entries read (var kpi_fact_models), split by what dbt's
    manifest says of their materialization, and the web KPIs, incremental, read none of the
    facts rebuilt in full."""
    manifest = json.loads(ensure_manifest(Settings.from_env()).read_text())
    declared = DbtInvocation(Settings.from_env()).vars()["kpi_fact_models"]
    materialized = {
        node["name"]: node["config"]["materialized"] for node in manifest["nodes"].values()
    }
    flows = {
        kpi["computation"]["fact"]
        for kpi in kpi_catalogue()
        if kpi["computation"]["type"] == "aggregate"
        and materialized[kpi["computation"]["fact"]] == "incremental"
    }
    others = {
        kpi["computation"]["fact"]
        for kpi in kpi_catalogue()
        if "fact" in kpi["computation"] and kpi["computation"]["fact"] not in flows
    }
    assert declared == {"incremental_flows": sorted(flows), "rebuilt_in_full": sorted(others)}
    assert flows == {"fct_web_sessions", "fct_web_transactions"}
    parents = models_and_parents()
    assert others <= set(parents["int_kpi__values_from_rebuilt_facts"][1])
    for web_model in ("int_kpi__web", "int_kpi__web_members"):
        assert flows <= set(parents[web_model][1]), web_model
        assert not set(parents[web_model][1]) & others, web_model


def test_dbt_run_by_hand_through_boussole_gets_the_kpi_models_dependencies():
    """`boussole dbt` is dbt as the pipeline invokes it: the web KPI model's upstream holds the
    web facts the catalogue reads and none of the CRM facts."""
    completed = subprocess.run(
        [str(BOUSSOLE), "dbt", "ls", "--quiet", "--select", "+int_kpi__web"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    # Models only: "boussole.<layer>...<model>" (tests and sources have other prefixes).
    upstream = {
        line.rsplit(".", 1)[-1] for line in completed.stdout.split() if line.startswith("boussole.")
    }
    assert {"fct_web_sessions", "fct_web_transactions", "int_kpi__web"} <= upstream
    assert not upstream & {"fct_deals", "fct_tickets", "int_sales__deal_states"}

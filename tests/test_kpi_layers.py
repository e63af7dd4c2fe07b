"""The dbt layers run one way: staging -> intermediate -> marts (facts, dimensions) -> kpi
(the KPI layer: its steps int_kpi__*, then kpi_values, kpi_catalogue and the wide views) ->
semantic (the MetricFlow layer on the facts). A model reads its own layer or those upstream
of it, never one downstream, so that the Dagster graph reads left to right."""

import json

import dagster as dg
import yaml

from boussole.dbt_manifest import ensure_manifest, kpi_catalogue
from boussole.settings import DBT_PROJECT_DIR, Settings

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
    """dbt needs a model's refs when it parses it, before the catalogue can be read: the var
    kpi_fact_models declares them (a missing one fails the build; none is left over), and the
    web KPIs, incremental, read none of the facts rebuilt in full."""
    ensure_manifest(Settings.from_env())
    read = {kpi["computation"]["fact"] for kpi in kpi_catalogue() if "fact" in kpi["computation"]}
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    declared = project["vars"]["kpi_fact_models"]
    assert sorted(declared["incremental_flows"] + declared["rebuilt_in_full"]) == sorted(read)
    parents = models_and_parents()
    for web_model in ("int_kpi__web", "int_kpi__web_members"):
        assert not set(parents[web_model][1]) & set(declared["rebuilt_in_full"]), web_model

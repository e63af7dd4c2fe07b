"""The KPI catalogue as the dbt manifest holds it: the entries of the model whose meta carries
`kpis`, found by that meta rather than by a file path, so that the catalogue may move or be
split without its readers (`boussole kpi`, the semantic layer) changing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boussole.settings import DBT_PROJECT_DIR, Settings
from boussole.yaml_files import read_yaml

PROJECT_NAME = "boussole"
# A model's materialization as its config() block sets it, the way the project configures
# incremental models.
INCREMENTAL_CONFIG = re.compile(r"materialized\s*=\s*['\"]incremental['\"]")


@dataclass(frozen=True)
class KpiCatalogue:
    """The parsed dbt manifest and the catalogue entries it holds, in catalogue order."""

    manifest: dict[str, Any]
    kpis: list[dict[str, Any]]
    # The unique ids of the models whose meta holds entries (one today).
    catalogue_nodes: list[str]
    # Where the manifest was read from (None: built from the project's YAML files).
    manifest_path: Path | None = None

    @classmethod
    def from_manifest(
        cls, manifest: dict[str, Any], manifest_path: Path | None = None
    ) -> KpiCatalogue:
        kpis, holders = [], []
        for unique_id, node in manifest["nodes"].items():
            entries = node.get("config", {}).get("meta", {}).get("kpis")
            if node["resource_type"] == "model" and entries:
                kpis.extend(entries)
                holders.append(unique_id)
        if not kpis:
            raise LookupError("no model of the dbt manifest carries meta.kpis")
        return cls(manifest, kpis, holders, manifest_path)

    @classmethod
    def from_project_files(cls, project_dir: Path = DBT_PROJECT_DIR) -> KpiCatalogue:
        """The catalogue read from the YAML files of the dbt project `project_dir` themselves,
        without dbt: for what dbt's parse depends on (the var kpi_fact_models, the generated
        semantic layer), which must be known even when the project does not parse."""
        models = []
        for path in sorted((project_dir / "models").rglob("*.yml")):
            document = read_yaml(path) or {}
            for model in document.get("models") or []:
                relative = path.relative_to(project_dir)
                models.append((f"model.{PROJECT_NAME}.{model['name']}", model, relative))
        manifest = {
            "nodes": {
                unique_id: {
                    "resource_type": "model",
                    "config": model.get("config", {}),
                    "patch_path": f"{PROJECT_NAME}://{path}",
                }
                for unique_id, model, path in models
            }
        }
        return cls.from_manifest(manifest)

    @classmethod
    def load(cls, settings: Settings) -> KpiCatalogue:
        """The catalogue of the current project (dbt parses it first when it changed)."""
        # Imported here: the dbt invocation itself reads the catalogue (kpi_fact_models).
        from boussole.dbt_manifest import ensure_manifest

        path = ensure_manifest(settings)
        return cls.from_manifest(json.loads(path.read_text()), path)

    def kpi(self, kpi_id: str) -> dict[str, Any]:
        for entry in self.kpis:
            if entry["id"] == kpi_id:
                return entry
        raise KeyError(kpi_id)

    def source_files(self) -> list[Path]:
        """The YAML files the entries are written in (relative to the dbt project)."""
        return sorted(
            {
                Path(self.manifest["nodes"][node]["patch_path"].split("://")[-1])
                for node in self.catalogue_nodes
            }
        )


def kpi_fact_models(
    catalogue: KpiCatalogue, project_dir: Path = DBT_PROJECT_DIR
) -> dict[str, list[str]]:
    """The models the KPI layer reads, as the var kpi_fact_models of each dbt invocation: dbt
    resolves a model's refs when it parses it, before the catalogue (a model's meta) can be
    read, so they come from the catalogue's files. `incremental_flows`: the facts of the flows
    (aggregate) over an incremental model, read by the incremental web KPI models;
    `rebuilt_in_full`: the others. dbt checks the split when the KPI models run."""
    models = {path.stem: path for path in (project_dir / "models").rglob("*.sql")}
    lists: dict[str, set[str]] = {"incremental_flows": set(), "rebuilt_in_full": set()}
    for kpi in catalogue.kpis:
        fact = kpi["computation"].get("fact")
        if fact is None:
            continue
        path = models.get(fact)
        incremental = path is not None and INCREMENTAL_CONFIG.search(path.read_text())
        flow = kpi["computation"]["type"] == "aggregate"
        lists["incremental_flows" if flow and incremental else "rebuilt_in_full"].add(fact)
    return {name: sorted(facts) for name, facts in lists.items()}

"""The dbt manifest that Dagster reads to know the models: parsed once, again only when the
dbt project changed (definitions loading never parses).

It stays in the project (dbt_project/target/manifest.json, where dagster-dbt's DbtProject
expects it) while the parse's other artifacts go to the data folder: it depends on the project
alone, not on the settings or the data (the vars and the warehouse path change none of it),
and the definitions load it before any data folder is involved, so one parse serves every
data folder of the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from boussole.dbt_invocation import DbtInvocation
from boussole.settings import DBT_PROJECT_DIR, Settings

MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
_PROJECT_INPUTS = ("models", "macros", "tests", "seeds", "dbt_project.yml", "profiles.yml")


def _latest_input_change() -> float:
    latest = 0.0
    for name in _PROJECT_INPUTS:
        path = DBT_PROJECT_DIR / name
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        for file in files:
            latest = max(latest, file.stat().st_mtime)
    return latest


def manifest_is_current() -> bool:
    return MANIFEST_PATH.exists() and MANIFEST_PATH.stat().st_mtime >= _latest_input_change()


def ensure_manifest(settings: Settings, force: bool = False) -> Path:
    """Run `dbt parse` when the manifest is missing or older than the dbt project."""
    if force or not manifest_is_current():
        invocation = DbtInvocation(settings)
        # Its own lane: the builds' vars hold the as-of date, and a parse with other vars
        # would make the next build parse everything again.
        target_path = invocation.new_target_path(lane="parse")
        completed = invocation.run(
            "parse", "--quiet", target_path=target_path, capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"dbt parse failed in {DBT_PROJECT_DIR}:\n{completed.stdout}{completed.stderr}"
            )
        # Copied beside it, then renamed: a definitions load never reads half a manifest.
        MANIFEST_PATH.parent.mkdir(exist_ok=True)
        copy = MANIFEST_PATH.with_name(f".{MANIFEST_PATH.name}.{uuid.uuid4().hex}")
        shutil.copyfile(target_path / "manifest.json", copy)
        os.replace(copy, MANIFEST_PATH)
    return MANIFEST_PATH


def kpi_catalogue() -> list[dict]:
    """The KPI catalogue entries (dbt_project/models/kpi/kpi_catalogue.yml), as dbt
    parsed them into the manifest: the one definition the models and checks share."""
    manifest = json.loads(MANIFEST_PATH.read_text())
    return manifest["nodes"]["model.boussole.kpi_catalogue"]["config"]["meta"]["kpis"]


def published_kpi_ids() -> list[str]:
    """The ids of the KPIs that kpi_values holds."""
    return sorted(kpi["id"] for kpi in kpi_catalogue())

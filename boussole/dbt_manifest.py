"""The dbt manifest that Dagster reads to know the models: parsed once, again only when the
dbt project changed (definitions loading never parses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
        dbt = Path(sys.executable).parent / "dbt"
        completed = subprocess.run(
            [
                str(dbt),
                "parse",
                "--quiet",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                # The same vars as the builds, so that they can reuse this parse.
                "--vars",
                json.dumps(settings.dbt_vars()),
            ],
            env={**os.environ, **settings.dbt_env()},
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"dbt parse failed in {DBT_PROJECT_DIR}:\n{completed.stdout}{completed.stderr}"
            )
    return MANIFEST_PATH


def kpi_catalogue() -> list[dict]:
    """The KPI catalogue entries (dbt_project/models/marts/kpi/kpi_catalogue.yml), as dbt
    parsed them into the manifest: the one definition the models and checks share."""
    manifest = json.loads(MANIFEST_PATH.read_text())
    return manifest["nodes"]["model.boussole.kpi_catalogue"]["config"]["meta"]["kpis"]


def published_kpi_ids() -> list[str]:
    """The ids of the KPIs that kpi_values holds."""
    return sorted(kpi["id"] for kpi in kpi_catalogue())

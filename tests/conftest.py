"""Shared fixtures: an isolated Boussole environment (landing, data, Dagster instance)."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BOUSSOLE = Path(sys.executable).parent / "boussole"


@dataclass
class Workspace:
    landing: Path
    data: Path
    dagster_home: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BOUSSOLE_LANDING_DIR": str(self.landing),
            "BOUSSOLE_DATA_DIR": str(self.data),
            "DAGSTER_HOME": str(self.dagster_home),
            "BOUSSOLE_PII_KEY": "test-key-for-boussole-tests",
        }

    @property
    def published(self) -> Path:
        return self.data / "published" / "boussole.duckdb"

    def boussole(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BOUSSOLE), *args], env=self.env, capture_output=True, text=True, timeout=900
        )


def make_workspace(root: Path, landing_fixture: str | None = None) -> Workspace:
    """A landing folder (copied from a fixture), a data folder and a Dagster instance that
    uses the project's dagster.yaml settings with its storage kept under `root`."""
    workspace = Workspace(root / "landing", root / "data", root / "dagster_home")
    if landing_fixture:
        shutil.copytree(FIXTURES / landing_fixture, workspace.landing)
    else:
        workspace.landing.mkdir(parents=True)
    workspace.dagster_home.mkdir(parents=True)
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    for storage_key in ("storage", "local_artifact_storage", "compute_logs"):
        config.pop(storage_key, None)
    (workspace.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path, "landing_small")

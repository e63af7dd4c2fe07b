"""The Boussole code location: one Definitions object for the whole pipeline.

landing files -> ingestion (raw_*) -> dbt staging -> intermediate -> marts
              -> Great Expectations + dbt tests (blocking checks) -> published_mart
"""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from boussole.settings import get_settings
from orchestration.assets.ingestion import ingestion_assets, load_manifest
from orchestration.assets.publication import build_publication_asset
from orchestration.assets.transformation import dbt_models, dbt_project
from orchestration.automation import daily_schedule, landing_files_sensor, pipeline_job
from orchestration.checks.quality import great_expectations_suites
from orchestration.resources import LandingResource, WarehouseResource

MART_GROUP = "marts"


def _published_tables() -> list[dg.AssetKey]:
    return [spec.key for spec in dbt_models.specs if spec.group_name == MART_GROUP]


def _guarding_checks(published: list[dg.AssetKey]) -> list[dg.AssetCheckKey]:
    """Every blocking check (dbt tests of error severity, GX suites) on a published table."""
    specs = [*dbt_models.check_specs, *great_expectations_suites.check_specs]
    return [s.key for s in specs if s.asset_key in published and s.blocking]


_published = _published_tables()
published_mart = build_publication_asset(_published, _guarding_checks(_published))

settings = get_settings()

defs = dg.Definitions(
    assets=[*ingestion_assets, load_manifest, dbt_models, published_mart],
    asset_checks=[great_expectations_suites],
    jobs=[pipeline_job],
    schedules=[daily_schedule],
    sensors=[landing_files_sensor],
    resources={
        "warehouse": WarehouseResource(path=str(settings.build_warehouse_path)),
        "landing": LandingResource(path=str(settings.landing_dir)),
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(dbt_project.profiles_dir),
            # The dbt of this interpreter's environment, whether or not it is on PATH.
            dbt_executable=str(Path(sys.executable).parent / "dbt"),
        ),
    },
)

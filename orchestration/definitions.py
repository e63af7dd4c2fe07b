"""The Boussole code location: one Definitions object for the whole pipeline.

landing files -> ingestion (raw_*) -> dbt staging -> intermediate -> marts -> kpi
              -> Great Expectations + dbt tests (blocking checks), kpi_anomalies (audit)
              -> published_mart (history, restatements, alerts)
              -> postgres_mart (the same tables in PostgreSQL, when BOUSSOLE_PG_PUBLISH is on)
              -> kpi_dashboard (the static Evidence site, when BOUSSOLE_DASHBOARD is on)

The settings are read from the environment here, once: what the definitions are made of (the
extract-date partitions, the schedule's time zone) takes them from this read, and the steps,
the sensor and the checks from the resources built with it.
"""

import json

import dagster as dg

from boussole.dbt_manifest import ensure_manifest
from boussole.ingestion.contracts import SOURCES
from boussole.settings import Settings
from orchestration.assets.audit import ANOMALIES_KEY, build_anomalies_asset
from orchestration.assets.dashboard import kpi_dashboard
from orchestration.assets.ingestion import build_ingestion_asset, load_manifest
from orchestration.assets.postgres_publication import postgres_mart
from orchestration.assets.publication import build_publication_asset
from orchestration.assets.transformation import build_dbt_models, delete_insert_keys
from orchestration.automation import build_daily_schedule, landing_files_sensor, pipeline_job
from orchestration.checks.quality import great_expectations_suites
from orchestration.partitions import extract_date_partitions
from orchestration.resources import LandingResource, SettingsResource, WarehouseResource

# The dbt groups whose tables are published, but the steps (int_) of the KPI layer.
PUBLISHED_GROUPS = ("marts", "kpi")

settings = Settings.from_env()
# Parses only when the manifest is missing or older than the dbt project (an mtime check
# otherwise).
dbt_manifest = json.loads(ensure_manifest(settings).read_text())
dbt_models = build_dbt_models(dbt_manifest)
partitions = extract_date_partitions(settings)


def _published_tables() -> list[dg.AssetKey]:
    return [
        spec.key
        for spec in dbt_models.specs
        if spec.group_name in PUBLISHED_GROUPS and not spec.key.path[-1].startswith("int_")
    ]


def _guarding_checks(published: list[dg.AssetKey]) -> list[dg.AssetCheckKey]:
    """Every blocking check (dbt tests of error severity, GX suites) on a published table."""
    specs = [*dbt_models.check_specs, *great_expectations_suites.check_specs]
    return [s.key for s in specs if s.asset_key in published and s.blocking]


_published = _published_tables()
kpi_anomalies = build_anomalies_asset(dg.AssetKey(["kpi", "kpi_values"]))
published_mart = build_publication_asset(
    [*_published, ANOMALIES_KEY], _guarding_checks(_published), delete_insert_keys(dbt_manifest)
)

defs = dg.Definitions(
    assets=[
        *(build_ingestion_asset(source, partitions) for source in SOURCES),
        load_manifest,
        dbt_models,
        kpi_anomalies,
        published_mart,
        *([postgres_mart] if settings.postgres_publishing else []),
        *([kpi_dashboard] if settings.build_dashboard else []),
    ],
    asset_checks=[great_expectations_suites],
    jobs=[pipeline_job],
    schedules=[build_daily_schedule(settings.reporting_tz)],
    sensors=[landing_files_sensor],
    # Every run (schedule, sensor, UI, boussole run) runs its steps one after another in its
    # own process: the warehouse pool serialises them anyway, and a process per step would
    # import Dagster, dbt and GX again each time (about 40 s more a run on this project).
    executor=dg.in_process_executor,
    resources={
        "settings": SettingsResource.from_settings(settings),
        "warehouse": WarehouseResource(path=str(settings.build_warehouse_path)),
        "landing": LandingResource(path=str(settings.landing_dir)),
    },
)

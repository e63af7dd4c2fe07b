"""The ingestion assets through Dagster: metadata per raw table and the readable-files check."""

from datetime import date

import dagster as dg
import duckdb

from boussole.ingestion.contracts import LANDING_OBJECTS
from boussole.sample_data import SampleScale, generate
from boussole.settings import Settings
from orchestration.assets.ingestion import (
    FILES_READABLE_CHECK,
    build_ingestion_asset,
    raw_asset_key,
)
from orchestration.checks.quality import RAW_QUALITY_CHECK, great_expectations_suites
from orchestration.partitions import extract_date_partitions
from orchestration.resources import LandingResource, SettingsResource, WarehouseResource


def one_day_landing(tmp_path, faults: frozenset[str] = frozenset()):
    """A landing folder with a small generated extract of 2026-01-01, with `faults`."""
    landing = tmp_path / "landing"
    generate(
        landing,
        start=date(2026, 1, 1),
        end=date(2026, 1, 1),
        scale=SampleScale(web_events_per_day=20),
        faults=faults,
    )
    return landing


def test_ingest_support_reports_counts_quarantine_and_unreadable_files(tmp_path):
    landing = one_day_landing(tmp_path, frozenset({"bad_date", "unknown_enum", "empty_file"}))
    (landing / "support" / "2026-01-01" / "notes.txt").write_text("not an export")
    settings = Settings.from_env({})
    ingest_support = build_ingestion_asset("support", extract_date_partitions(settings))
    result = dg.materialize(
        [ingest_support],
        partition_key="2026-01-01",
        resources={
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
            "landing": LandingResource(path=str(landing)),
            "settings": SettingsResource.from_settings(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success

    metadata = {
        event.asset_key.path[-1]: event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    tickets = metadata["tickets"]
    # The two bad tickets (created_at "not-a-date", status "escalated") are quarantined; the
    # others, counted here as the lines of the day's file, are in the raw table.
    lines = len((landing / "support" / "2026-01-01" / "tickets.jsonl").read_text().splitlines())
    assert lines > 2
    assert (
        tickets["rows_read"].value,
        tickets["rows_loaded"].value,
        tickets["rows_quarantined"].value,
    ) == (lines, lines - 2, 2)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        in_raw = conn.execute("select count(*) from raw_support.tickets").fetchone()[0]
    assert tickets["dagster/row_count"].value == in_raw == lines - 2
    # What the landing folder holds that is not loaded shows with its reason.
    assert (
        "| support/2026-01-01/notes.txt | not a file type of the contract"
        in tickets["ignored_entries"].value
    )
    preview = tickets["quarantine_preview"].value
    assert "created_at" in preview and "not-a-date" in preview and "escalated" in preview

    checks = {
        evaluation.asset_key.path[-1]: evaluation
        for evaluation in result.get_asset_check_evaluations()
    }
    assert {e.check_name for e in checks.values()} == {FILES_READABLE_CHECK}
    assert not checks["groups"].passed
    assert checks["groups"].severity == dg.AssetCheckSeverity.WARN
    assert "groups.jsonl.gz: the file is empty" in checks["groups"].description
    assert checks["tickets"].passed


def test_one_source_ingested_alone_runs_its_own_checks_only(tmp_path):
    """A run of one source's raw assets (as the UI or `dagster asset materialize` makes it)
    takes along the checks of those assets only: the Great Expectations suites of the other
    sources and of the marts are left out, not forced into the run."""
    landing = one_day_landing(tmp_path)
    settings = Settings.from_env(
        {"BOUSSOLE_DATA_DIR": str(tmp_path / "data"), "BOUSSOLE_LANDING_DIR": str(landing)}
    )
    spend = [raw_asset_key(o.source, o.name) for o in LANDING_OBJECTS if o.source == "spend"]
    result = dg.materialize(
        [
            build_ingestion_asset("spend", extract_date_partitions(settings)),
            great_expectations_suites,
        ],
        selection=spend,
        partition_key="2026-01-01",
        resources={
            "warehouse": WarehouseResource(path=str(settings.build_warehouse_path)),
            "landing": LandingResource(path=str(landing)),
            "settings": SettingsResource.from_settings(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == set(spend)
    evaluated = {(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()}
    assert evaluated == {
        (key, check) for key in spend for check in (FILES_READABLE_CHECK, RAW_QUALITY_CHECK)
    }
    # The results kept are those of the spend tables, one suite result per table.
    with duckdb.connect(str(settings.history_path), read_only=True) as history:
        tables = history.execute(
            "select distinct table_name from quality_results order by table_name"
        ).fetchall()
    assert [t for (t,) in tables] == sorted(f"raw_spend.{key.path[-1]}" for key in spend)

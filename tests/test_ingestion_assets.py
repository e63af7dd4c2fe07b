"""The ingestion assets through Dagster: metadata per raw table and the readable-files check."""

from datetime import date

import dagster as dg
import duckdb

from boussole.sample_data import SampleScale, generate
from boussole.settings import Settings
from orchestration.assets.ingestion import FILES_READABLE_CHECK, build_ingestion_asset
from orchestration.partitions import extract_date_partitions
from orchestration.resources import LandingResource, SettingsResource, WarehouseResource


def test_ingest_support_reports_counts_quarantine_and_unreadable_files(tmp_path):
    landing = tmp_path / "landing"
    generate(
        landing,
        start=date(2026, 1, 1),
        end=date(2026, 1, 1),
        scale=SampleScale(web_events_per_day=20),
        faults=frozenset({"bad_date", "unknown_enum", "empty_file"}),
    )
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

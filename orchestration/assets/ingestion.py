"""Ingestion assets: one per source, one raw table per landing object, partitioned by
extract date. A run over a range of dates loads all their files in one step."""

from collections import defaultdict
from datetime import date

import dagster as dg

from boussole.ingestion.contracts import landed_files, objects_of, survey_landing
from boussole.ingestion.loader import FileLoad, load_files, record_ignored
from orchestration.resources import LandingResource, SettingsResource, WarehouseResource

WAREHOUSE_POOL = "duckdb_warehouse"
FILES_READABLE_CHECK = "landed_files_readable"


def raw_asset_key(source: str, object_name: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source, object_name])


# Every ingestion asset records the files it read in this table; incremental staging models
# read it to find the files they have not processed.
LOAD_MANIFEST_KEY = dg.AssetKey(["ingestion", "load_manifest"])


def _file_table(loads: list[FileLoad]) -> str:
    lines = [
        "| file | status | read | loaded | quarantined | reason |",
        "|---|---|---|---|---|---|",
    ]
    for load in loads:
        lines.append(
            f"| {load.relative_path} | {load.status} | {load.rows_read} | {load.rows_loaded} "
            f"| {load.rows_quarantined} | {load.failure_reason or ''} |"
        )
    return "\n".join(lines)


def _quarantine_preview(conn, source: str, file_checksums: list[str]) -> dict[str, str]:
    """A markdown table per object of the first records this run sent to quarantine."""
    rows = conn.execute(
        "select object, file_path, record_number, field, reason, left(raw_text, 60) "
        "from ingestion.quarantine where source = ? and list_contains(?, file_sha256) "
        "qualify row_number() over (partition by object order by file_path, record_number) <= 5",
        [source, file_checksums],
    ).fetchall()
    previews: dict[str, list[str]] = defaultdict(
        lambda: ["| file | record | field | reason | raw text |", "|---|---|---|---|---|"]
    )
    for object_name, path, number, field, reason, raw in rows:
        raw_cell = (raw or "").replace("|", "\\|")
        previews[object_name].append(
            f"| {path} | {number} | {field or ''} | {reason} | `{raw_cell}` |"
        )
    return {name: "\n".join(lines) for name, lines in previews.items()}


def build_ingestion_asset(
    source: str, partitions_def: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    objects = objects_of(source)

    @dg.multi_asset(
        name=f"ingest_{source}",
        specs=[
            dg.AssetSpec(
                key=raw_asset_key(source, o.name),
                description=o.description,
                group_name="ingestion",
                kinds={"duckdb"},
                metadata={"table": o.raw_table},
            )
            for o in objects
        ],
        check_specs=[
            dg.AssetCheckSpec(
                name=FILES_READABLE_CHECK,
                asset=raw_asset_key(source, o.name),
                description="Every landed file of this object could be read (a failed file is "
                "recorded in ingestion.load_manifest; the other files still load).",
            )
            for o in objects
        ],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        description=f"Load the {source} extracts of the selected dates into raw_{source}.*",
    )
    def ingest(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing: LandingResource,
        settings: SettingsResource,
    ):
        extract_dates = [date.fromisoformat(key) for key in context.partition_keys]
        files = [
            landed
            for extract_date in extract_dates
            for landed in landed_files(landing.directory, source, extract_date)[0]
        ]
        ignored = [
            entry for entry in survey_landing(landing.directory) if entry.source in (None, source)
        ]
        for entry in ignored:
            context.log.warning(f"{entry.relative_path}: ignored, {entry.reason}")

        with warehouse.connect() as conn:
            loads = load_files(conn, files, landing.directory, settings.get().plausible_dates)
            record_ignored(conn, ignored, [source])
            totals = dict(
                conn.execute(
                    "select object, count(*) from ("
                    + " union all ".join(
                        f"select '{o.name}' as object from {o.raw_table}" for o in objects
                    )
                    + ") group by object"
                ).fetchall()
            )
            quarantine_preview = _quarantine_preview(conn, source, [x.sha256 for x in loads])

        by_object: dict[str, list[FileLoad]] = defaultdict(list)
        for load in loads:
            by_object[load.file.landing_object.name].append(load)
        for load in loads:
            if load.status == "failed":
                context.log.error(
                    f"{load.relative_path}: could not be read ({load.failure_reason}); "
                    "recorded as failed in ingestion.load_manifest, the other files still load"
                )
            elif load.status == "duplicate":
                context.log.warning(f"{load.relative_path}: not loaded, {load.failure_reason}")
            elif load.rows_quarantined:
                context.log.warning(
                    f"{load.relative_path}: {load.rows_quarantined} of {load.rows_read} records "
                    "sent to ingestion.quarantine"
                )

        # Entries of the landing folder that no object claims belong to the source's folder.
        ignored_table = (
            "\n".join(
                ["| entry | reason |", "|---|---|"]
                + [f"| {entry.relative_path} | {entry.reason} |" for entry in ignored]
            )
            if ignored
            else "nothing ignored"
        )
        for landing_object in objects:
            object_loads = by_object.get(landing_object.name, [])
            failed = [x for x in object_loads if x.status == "failed"]
            yield dg.AssetCheckResult(
                asset_key=raw_asset_key(source, landing_object.name),
                check_name=FILES_READABLE_CHECK,
                passed=not failed,
                severity=dg.AssetCheckSeverity.WARN,
                description="; ".join(f"{x.relative_path}: {x.failure_reason}" for x in failed)
                or None,
                metadata={"files_failed": len(failed)},
            )
            yield dg.MaterializeResult(
                asset_key=raw_asset_key(source, landing_object.name),
                metadata={
                    "files_loaded": sum(1 for x in object_loads if x.status == "loaded"),
                    "files_already_loaded": sum(
                        1 for x in object_loads if x.status == "already_loaded"
                    ),
                    "files_failed": sum(1 for x in object_loads if x.status == "failed"),
                    "files_duplicate": sum(1 for x in object_loads if x.status == "duplicate"),
                    "deliveries_replaced": sum(
                        1 for x in object_loads if x.replaces and x.status != "already_loaded"
                    ),
                    "rows_read": sum(x.rows_read for x in object_loads),
                    "rows_loaded": sum(x.rows_loaded for x in object_loads),
                    "rows_quarantined": sum(x.rows_quarantined for x in object_loads),
                    "dagster/row_count": totals.get(landing_object.name, 0),
                    "files": dg.MetadataValue.md(_file_table(object_loads)),
                    "quarantine_preview": dg.MetadataValue.md(
                        quarantine_preview.get(landing_object.name, "nothing quarantined")
                    ),
                    "ignored_entries": dg.MetadataValue.md(ignored_table),
                },
            )

    return ingest


load_manifest = dg.AssetSpec(
    key=LOAD_MANIFEST_KEY,
    description="One row per landed file read (by sha256): source, object, extract date, "
    "status and row counts. Written by every ingestion asset as it loads.",
    group_name="ingestion",
    kinds={"duckdb"},
    metadata={"table": "ingestion.load_manifest"},
)

"""Poison records in Dagster: the failure of the dbt step names the raw records behind it, and
`boussole quarantine` moves named records to ingestion.quarantine (boussole/poison.py).

The quarantine writes the build warehouse, so it runs as the pipeline's steps do: an op in the
duckdb_warehouse pool (limit 1) in a run of the Boussole instance, which waits while a step of
another run holds the warehouse, connected through WarehouseResource.
"""

import json
from pathlib import Path

import dagster as dg

from boussole.audit_scope import forget_publication
from boussole.dbt_manifest import ensure_manifest
from boussole.poison import (
    RecordRef,
    Suspect,
    quarantine_command,
    quarantine_records,
    quarantine_summary,
    report_lines,
    trace_failed_build,
)
from boussole.settings import Settings
from orchestration.assets.ingestion import WAREHOUSE_POOL
from orchestration.recovery import process_tags
from orchestration.resources import SettingsResource, WarehouseResource

# Failure metadata of the dbt step: the records named, read back by `boussole run`.
POISON_RECORDS = "poison_records"
QUARANTINE_OP = "quarantine_records_by_hand"


def dbt_build_failure(
    context: dg.AssetExecutionContext, description: str, warehouse: Path, target_path: Path
) -> dg.Failure:
    """The failure of a dbt build, naming the raw records behind its failed nodes (from the
    invocation's artifacts in `target_path`) and the command that quarantines them."""
    suspects = trace_failed_build(warehouse, target_path)
    lines = report_lines(suspects)
    for line in lines:
        context.log.error(line)
    metadata = {}
    if suspects:
        metadata = {
            POISON_RECORDS: dg.MetadataValue.json([s.as_dict() for s in suspects]),
            "quarantine command": dg.MetadataValue.text(quarantine_command(suspects)),
        }
    return dg.Failure(description="\n".join([description, *lines]), metadata=metadata)


def named_records(step_failure) -> list[str]:
    """The lines naming the records behind a failed step (its STEP_FAILURE event data)."""
    failure = getattr(step_failure, "user_failure_data", None)
    named = failure.metadata.get(POISON_RECORDS) if failure is not None else None
    return report_lines([Suspect(**s) for s in named.value]) if named is not None else []


class QuarantineConfig(dg.Config):
    """The records to quarantine (<file>:<record number>), why, and the field if known."""

    records: list[str]
    reason: str
    field: str | None = None


@dg.op(name=QUARANTINE_OP, pool=WAREHOUSE_POOL)
def quarantine_records_by_hand(
    context: dg.OpExecutionContext,
    config: QuarantineConfig,
    warehouse: WarehouseResource,
    settings: SettingsResource,
) -> list[str]:
    records = [RecordRef.parse(text) for text in config.records]
    manifest = json.loads(ensure_manifest(settings.get()).read_text())
    with warehouse.connect() as conn:
        done, dropped = quarantine_records(conn, records, config.reason, manifest, config.field)
    # The served mart holds what the record gave: the next run builds and publishes again,
    # even with no new file.
    forget_publication(settings.get())
    summary = quarantine_summary(done, dropped)
    for line in summary:
        context.log.info(line)
    return summary


@dg.job(
    name="boussole_quarantine",
    description="Move named raw records to ingestion.quarantine (boussole quarantine).",
)
def quarantine_job() -> None:
    quarantine_records_by_hand()


def quarantine_by_hand(
    instance: dg.DagsterInstance,
    settings: Settings,
    records: list[RecordRef],
    reason: str,
    field: str | None,
) -> dg.ExecuteInProcessResult:
    return quarantine_job.execute_in_process(
        instance=instance,
        resources={
            "warehouse": WarehouseResource(path=str(settings.build_warehouse_path)),
            "settings": SettingsResource.from_settings(settings),
        },
        run_config={
            # The command prints what was done, or why nothing was (a record unknown).
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            "ops": {
                QUARANTINE_OP: {
                    "config": {
                        "records": [str(r) for r in records],
                        "reason": reason,
                        "field": field,
                    }
                }
            },
        },
        tags=process_tags(),
        raise_on_error=False,
    )

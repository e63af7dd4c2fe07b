"""The pipeline job, its daily schedule, and the sensor that reacts to new landing files."""

import hashlib
import json

import dagster as dg

from boussole.ingestion.contracts import SOURCES, extract_dates
from boussole.pii_key import development_key_refusal
from orchestration.assets.publication import alert_on_failed_checks
from orchestration.partitions import extract_date_partitions
from orchestration.recovery import host_tags, recover_before_request
from orchestration.resources import LandingResource, SettingsResource

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"

pipeline_job = dg.define_asset_job(
    name="boussole_pipeline",
    selection=dg.AssetSelection.all(),
    description=(
        "Ingest the extracts of the selected dates, build the dbt models, audit them, and "
        "publish the KPI mart when every check passed."
    ),
    hooks={alert_on_failed_checks},
)


def build_daily_schedule(reporting_tz: str) -> dg.ScheduleDefinition:
    return dg.schedule(
        job=pipeline_job,
        cron_schedule="30 6 * * *",
        execution_timezone=reporting_tz,
        name="boussole_daily",
        description="Every morning at 06:30 (reporting time zone): the pipeline for that "
        "day's extract date.",
    )(daily_schedule)


def daily_schedule(context: dg.ScheduleEvaluationContext, settings: SettingsResource):
    recover_before_request(context)
    # A run that would be refused is not started: the tick says why.
    refused = development_key_refusal(settings.get())
    if refused:
        return dg.SkipReason(refused)
    extract_date = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=extract_date, partition_key=extract_date, tags=host_tags())


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover a range of extract dates (single-run backfill)."""
    return {PARTITION_RANGE_START: first, PARTITION_RANGE_END: last}


def _day_fingerprint(landing: LandingResource, day: str) -> str:
    """Names, sizes and modification times of a day's files: cheap, and changes on arrival."""
    digest = hashlib.sha256()
    for source in SOURCES:
        day_dir = landing.directory / source / day
        if day_dir.is_dir():
            for path in sorted(p for p in day_dir.iterdir() if p.is_file()):
                stat = path.stat()
                digest.update(f"{source}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=60,
    description="Runs the pipeline over the extract dates whose landing files are new or changed.",
)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, landing: LandingResource, settings: SettingsResource
):
    recover_before_request(context)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    valid_keys = set(extract_date_partitions(settings.get()).get_partition_keys())
    current = {
        day.isoformat(): _day_fingerprint(landing, day.isoformat())
        for day in extract_dates(landing.directory)
        if day.isoformat() in valid_keys
    }
    changed = sorted(day for day, fingerprint in current.items() if seen.get(day) != fingerprint)
    if not changed:
        return dg.SkipReason("no new or changed landing files")
    # Left for a later tick (the cursor unchanged), once the key is set.
    refused = development_key_refusal(settings.get())
    if refused:
        return dg.SkipReason(refused)
    fingerprint = hashlib.sha256(json.dumps({d: current[d] for d in changed}).encode()).hexdigest()
    context.update_cursor(json.dumps(current))
    # One run over the changed range: dbt and the audit run once, not once per day.
    return dg.RunRequest(
        run_key=f"{changed[0]}..{changed[-1]}:{fingerprint[:16]}",
        tags={**partition_range_tags(changed[0], changed[-1]), **host_tags()},
    )

"""Great Expectations suites as Dagster asset checks, on the raw extracts and on the marts.

One multi-asset check runs every suite so that the GX context is created once per run (a run
of some assets only, one source's ingestion say, runs the suites of those assets):
- each suite of data_quality/suites/*.yml reports as its own check (gx_<suite>) on the mart
  table it guards;
- the raw suite (data_quality/suites/raw/raw_quality.yml, data_quality/stability.py) judges
  the run's extract days and reports as gx_raw_quality on each raw_<source>.<object> asset.

An expectation is blocking (a failure reports the check with ERROR severity: publication is
refused) or a warning (WARN severity: published, and the result kept in quality_results for
the values it concerns to be flagged). The raw checks are all warnings: what a raw fault
would break downstream, dbt's tests block. Every result goes to
quality_results in the publication history file (data_quality/results.py), and the run's
Data Docs site is built under <data>/quality/data_docs, linked from each check's metadata.
"""

import shutil
from dataclasses import replace
from datetime import date

import dagster as dg
import duckdb

from boussole.ingestion.contracts import LANDING_OBJECTS
from data_quality.results import CheckedSuite, record_results
from data_quality.runner import BLOCKING, SuiteOutcome, SuiteRunner, load_suites, write_outcome
from data_quality.stability import (
    JudgedDays,
    lacks_history,
    raw_suite_template,
    run_raw_suite,
)
from orchestration.assets.ingestion import WAREHOUSE_POOL, raw_asset_key
from orchestration.resources import SettingsResource, WarehouseResource

SUITES = load_suites()
RAW_QUALITY_CHECK = "gx_raw_quality"
DATA_DOCS_FOLDER = "data_docs"
# The tags Dagster gives a run over a range of partitions, or over one.
_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
_PARTITION_TAG = "dagster/partition"


def quality_check_specs() -> list[dg.AssetCheckSpec]:
    marts = [
        dg.AssetCheckSpec(
            name=suite.check_name,
            asset=dg.AssetKey(suite.asset_path),
            description=suite.description,
            blocking=True,
        )
        for suite in SUITES
    ]
    # Warnings only (raw_quality.yml): they need not stop the models downstream, and the
    # check runs with the marts' (one GX context a run).
    raw_description = raw_suite_template()["description"]
    raw = [
        dg.AssetCheckSpec(
            name=RAW_QUALITY_CHECK,
            asset=raw_asset_key(o.source, o.name),
            description=raw_description,
            blocking=False,
        )
        for o in LANDING_OBJECTS
    ]
    return marts + raw


def judged_days(tags: dict[str, str], latest_extract: date | None) -> JudgedDays | None:
    """The extract days of the run (its partitions); the latest loaded one otherwise."""
    start, end = (tags.get(t) for t in _RANGE_TAGS)
    if start and end:
        return JudgedDays.between(date.fromisoformat(start), date.fromisoformat(end))
    if tags.get(_PARTITION_TAG):
        return JudgedDays((date.fromisoformat(tags[_PARTITION_TAG]),))
    return JudgedDays((latest_extract,)) if latest_extract else None


def _table(outcome: SuiteOutcome) -> str:
    return "\n".join(
        [
            "| expectation | status | severity | observed / unexpected | threshold | note |",
            "|---|---|---|---|---|---|",
        ]
        + [
            f"| {o.name} | {o.status} | {o.severity} | "
            f"{o.unexpected_count if o.unexpected_count is not None else o.observed_value} "
            f"{', '.join(str(v) for v in o.unexpected_sample[:3])} | "
            f"{', '.join(f'{k}={v}' for k, v in o.threshold.items() if k != 'row_condition')} "
            f"| {(o.note or o.error or '').replace('|', '/')} |"
            for o in outcome.outcomes
        ]
    )


@dg.multi_asset_check(
    specs=quality_check_specs(),
    name="great_expectations_suites",
    # A run of some assets (one source's ingestion, from the UI or the CLI) runs their suites
    # only, and does not have to take every other check along.
    can_subset=True,
    pool=WAREHOUSE_POOL,
)
def great_expectations_suites(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
):
    quality_dir = settings.get().quality_results_dir
    docs_dir = quality_dir / DATA_DOCS_FOLDER
    # The site shows this run: the results of earlier runs stay in quality_results.
    shutil.rmtree(docs_dir, ignore_errors=True)
    runner = SuiteRunner(docs_dir=docs_dir)
    # The suites' own parameters are computed from the warehouse (SuiteSpec.parameters).
    parameters: dict = {}
    selected = {(key.asset_key, key.name) for key in context.selected_asset_check_keys}
    checked: list[tuple[dg.AssetKey, CheckedSuite]] = []
    with warehouse.connect(read_only=True) as conn:
        if any(name == RAW_QUALITY_CHECK for _, name in selected):
            latest = conn.execute(
                "select max(extract_date) from ingestion.load_manifest where status = 'loaded'"
            ).fetchone()[0]
            days = judged_days(dict(context.run.tags), latest)
            if days is not None:
                for raw in run_raw_suite(runner, conn, days):
                    o = raw.landing_object
                    key = raw_asset_key(o.source, o.name)
                    if (key, RAW_QUALITY_CHECK) in selected:
                        checked.append(
                            (key, CheckedSuite(RAW_QUALITY_CHECK, raw.outcome, raw.extract_dates))
                        )
        for suite in SUITES:
            key = dg.AssetKey(suite.asset_path)
            if (key, suite.check_name) in selected:
                checked.append(
                    (key, CheckedSuite(suite.check_name, runner.run(conn, suite, parameters)))
                )
    index = runner.build_data_docs()
    try:
        recorded = record_results(
            settings.get().history_path, context.run.run_id, [item for _, item in checked]
        )
        context.log.info(
            f"{recorded} expectation results kept in quality_results; Data Docs: {index}"
        )
    except duckdb.Error as error:
        # The checks still report (and block or warn); the results stay in the JSON files.
        context.log.error(f"could not keep the results in quality_results: {error}")
    for key, item in checked:
        outcome = item.outcome
        # Too short a history is said, not guessed: the results keep "could not run", and the
        # check passes with that note (every run of the first weeks would warn otherwise).
        passed = all(o.status == "passed" or lacks_history(o) for o in outcome.outcomes)
        # What was not judged, and why, is said too.
        notes = [f"{o.name}: {o.note}" for o in outcome.outcomes if o.note]
        description = (
            outcome.summary()
            if not passed
            else "; ".join([f"{len(outcome.outcomes)} expectations passed", *notes])
        )
        name = (
            outcome.suite
            if item.check_name != RAW_QUALITY_CHECK
            else (f"{outcome.suite}/{outcome.table}")
        )
        saved = write_outcome(replace(outcome, suite=name), quality_dir, context.run.run_id)
        if not passed:
            log = context.log.error if outcome.severity == BLOCKING else context.log.warning
            log(f"{item.check_name} on {outcome.table}: {outcome.summary()}")
        yield dg.AssetCheckResult(
            check_name=item.check_name,
            asset_key=key,
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR
            if outcome.severity in (None, BLOCKING)
            else dg.AssetCheckSeverity.WARN,
            description=description,
            metadata={
                "rows_validated": outcome.rows_validated,
                "could_not_run": len(outcome.could_not_run)
                - len([o for o in outcome.outcomes if lacks_history(o)]),
                "could_not_run_for_lack_of_history": len(
                    [o for o in outcome.outcomes if lacks_history(o)]
                ),
                "failed_expectations": len(outcome.failed),
                "blocking_failures": len(outcome.blocking_failures),
                "results_file": dg.MetadataValue.path(str(saved)),
                "data_docs": dg.MetadataValue.path(str(index)),
                "quality_results": dg.MetadataValue.text(
                    f"quality_results in {settings.get().history_path} (run {context.run.run_id})"
                ),
                "expectations": dg.MetadataValue.md(_table(outcome)),
            },
        )

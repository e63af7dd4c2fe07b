"""Great Expectations suites as blocking Dagster asset checks on the marts.

One multi-asset check runs every suite of data_quality/suites/ so that the GX context is
created once per run; each suite reports as its own check on the table it guards.
"""

import dagster as dg

from boussole.dbt_manifest import published_kpi_ids
from data_quality.runner import SuiteRunner, load_suites, write_outcome
from orchestration.assets.ingestion import WAREHOUSE_POOL
from orchestration.resources import SettingsResource, WarehouseResource

SUITES = load_suites()


def quality_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=suite.check_name,
            asset=dg.AssetKey(suite.asset_path),
            description=suite.description,
            blocking=True,
        )
        for suite in SUITES
    ]


@dg.multi_asset_check(
    specs=quality_check_specs(),
    name="great_expectations_suites",
    pool=WAREHOUSE_POOL,
)
def great_expectations_suites(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
):
    runner = SuiteRunner()
    # Values that suites take at run time ({"$PARAMETER": name} in the suite files).
    parameters = {"kpi_ids": published_kpi_ids()}
    selected = {key.name for key in context.selected_asset_check_keys}
    with warehouse.connect(read_only=True) as conn:
        for suite in SUITES:
            if suite.check_name not in selected:
                continue
            outcome = runner.run(conn, suite, parameters)
            saved = write_outcome(outcome, settings.get().quality_results_dir, context.run.run_id)
            if not outcome.passed:
                context.log.error(f"{suite.check_name} on {suite.table}: {outcome.summary()}")
            yield dg.AssetCheckResult(
                check_name=suite.check_name,
                asset_key=dg.AssetKey(suite.asset_path),
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=outcome.summary(),
                metadata={
                    "rows_validated": outcome.rows_validated,
                    "could_not_run": len(outcome.could_not_run),
                    "failed_expectations": len(outcome.failed),
                    "results_file": dg.MetadataValue.path(str(saved)),
                    "expectations": dg.MetadataValue.md(
                        "\n".join(
                            ["| expectation | status | unexpected |", "|---|---|---|"]
                            + [
                                f"| {o.name} | {o.status} | {o.unexpected_count or ''} |"
                                for o in outcome.outcomes
                            ]
                        )
                    ),
                },
            )

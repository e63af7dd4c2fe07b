"""The publish step of write-audit-publish: the audited marts replace the served mart.

Blocking checks already stop this asset when one fails in the same run. The asset also
verifies it explicitly: every check guarding a published table must have passed in this
very run, or nothing is published (a run that skipped a check cannot publish either).
"""

from collections.abc import Sequence

import dagster as dg

from boussole import restatements
from boussole.audit_scope import forget_publication, record_publication
from boussole.history import Recording
from boussole.publication import kpi_summary_table, publish_marts
from orchestration.assets.ingestion import WAREHOUSE_POOL
from orchestration.resources import SettingsResource, WarehouseResource


class PublicationRefused(dg.Failure):
    """A guarding check failed or did not run: the served mart stays as it was."""


def checks_not_passed_in_run(
    instance: dg.DagsterInstance, run_id: str, required: Sequence[dg.AssetCheckKey]
) -> list[str]:
    evaluations = {}
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        evaluations[evaluation.asset_check_key] = evaluation
    problems = []
    for key in required:
        label = f"{key.name} on {key.asset_key.to_user_string()}"
        evaluation = evaluations.get(key)
        if evaluation is None:
            problems.append(f"{label} (did not run)")
        # A failure of WARN severity (dbt tests of severity warn that found rows) blocks nothing.
        elif not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            problems.append(f"{label} (failed: {evaluation.description})")
    return problems


def build_publication_asset(
    published_tables: Sequence[dg.AssetKey], required_checks: Sequence[dg.AssetCheckKey]
) -> dg.AssetsDefinition:
    @dg.asset(
        name="published_mart",
        group_name="publication",
        deps=list(published_tables),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description=(
            "The audited KPI mart that analysts and BI tools read, replaced atomically "
            "only when every guarding check passed in the same run."
        ),
    )
    def published_mart(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        settings: SettingsResource,
    ):
        problems = checks_not_passed_in_run(context.instance, context.run_id, required_checks)
        if problems:
            raise PublicationRefused(
                description="Publication refused, the published mart is unchanged: "
                + "; ".join(problems)
            )
        # Until the new mart is recorded as published from this run's build, none is current.
        forget_publication(settings.get())
        recording = Recording(
            settings.get().history_path, context.run_id, settings.get().refuse_key_restatements
        )
        try:
            published = publish_marts(
                warehouse.path_obj, settings.get().published_mart_path, recording
            )
        except restatements.RestatementsRefused as refused:
            raise PublicationRefused(
                description=f"Publication refused, the published mart is unchanged: {refused}"
            ) from refused
        if published.recorded_late:
            context.log.warning(
                "recorded in the history the publication(s) served but not recorded (a run "
                "stopped after its swap): " + ", ".join(published.recorded_late)
            )
        restated = restatements.report(published.path)
        if restated:
            context.log.warning(
                f"{published.restatements} restatement(s) published: " + "; ".join(restated)
            )
        if published.orphans_removed:
            context.log.warning(
                "removed the temporary files left by a publication that did not finish: "
                + ", ".join(path.name for path in published.orphans_removed)
            )
        context.log.info(f"published {published.path}")
        # What it was built from: a later run with nothing new leaves it as it is.
        record_publication(settings.get(), context.run_id)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(published.path)),
                "tables": dg.MetadataValue.json(published.row_counts),
                "dagster/row_count": published.row_counts.get("kpi_values", 0),
                "checks_verified": len(required_checks),
                "publication_id": published.publication_id,
                "restatements": published.restatements,
                # Recording the publication and detecting restatements, within this step.
                "history_seconds": round(published.history_seconds, 3),
                "restated_values": dg.MetadataValue.md(
                    "\n".join(f"- {line}" for line in restated) or "none"
                ),
                "preview": dg.MetadataValue.md(f"```\n{kpi_summary_table(published.path)}\n```"),
            }
        )

    return published_mart

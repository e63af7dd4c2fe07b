"""The publish step of write-audit-publish: the audited marts replace the served mart.

Blocking checks already stop this asset when one fails in the same run. The asset also
verifies it explicitly: every check guarding a published table must have passed in this
very run, or nothing is published (a run that skipped a check cannot publish either). A
re-execution of runs (Dagster's re-execution from failure) counts as the runs it re-executes
back to the one that built the warehouse: their checks audited that build.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb

from boussole import alerts, restatements
from boussole.audit_scope import forget_publication, record_publication, recorded_build
from boussole.history import Recording, ensure_history
from boussole.publication import kpi_summary_table, publish_marts
from boussole.settings import Settings
from orchestration.assets.ingestion import WAREHOUSE_POOL
from orchestration.resources import SettingsResource, WarehouseResource


class PublicationRefused(dg.Failure):
    """A guarding check failed or did not run: the served mart stays as it was."""


def audited_runs(instance: dg.DagsterInstance, run_id: str, build_run_id: str | None) -> list[str]:
    """The runs whose checks audit the build that the run `run_id` publishes, newest first:
    that run, and when it re-executes earlier runs (Dagster's re-execution from failure), those
    back to the run that built the warehouse, `build_run_id`. The run alone if none of them
    built it: checks evaluated before another build audited another build."""
    runs = [run_id]
    run = instance.get_run_by_id(run_id)
    while run is not None and run.run_id != build_run_id and run.parent_run_id:
        runs.append(run.parent_run_id)
        run = instance.get_run_by_id(run.parent_run_id)
    return runs if build_run_id in runs else [run_id]


def run_check_results(
    instance: dg.DagsterInstance, run_ids: Sequence[str], required: Sequence[dg.AssetCheckKey]
) -> list[alerts.CheckResult]:
    """How each check in `required`, then each other check the runs `run_ids` (newest first:
    a run, then those it re-executes) evaluated (the raw checks' warnings), ended, as its
    latest evaluation in them says: passed, failed (blocking when of ERROR severity: a WARN
    failure, dbt tests of severity warn that found rows, blocks nothing), or could not run
    (a required one did not run in these runs, or an expectation could not)."""
    evaluations = {}
    for run_id in reversed(run_ids):
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            evaluations[evaluation.asset_check_key] = evaluation
    results = []
    for key in [*required, *(key for key in evaluations if key not in set(required))]:
        label = f"{key.name} on {key.asset_key.to_user_string()}"
        evaluation = evaluations.get(key)
        if evaluation is None:
            results.append(alerts.CheckResult(label, "could_not_run", "did not run"))
            continue
        could_not_run = evaluation.metadata.get("could_not_run")
        status = (
            "passed"
            if evaluation.passed
            else "could_not_run"
            if could_not_run is not None and could_not_run.value
            else "failed"
        )
        results.append(
            alerts.CheckResult(
                label,
                status,
                evaluation.description or "",
                blocking=evaluation.severity == dg.AssetCheckSeverity.ERROR,
            )
        )
    return results


def checks_not_passed(results: Sequence[alerts.CheckResult]) -> list[str]:
    """The blocking checks that did not pass, each with why."""
    return [
        f"{r.name} (did not run)"
        if r.description == "did not run"
        else f"{r.name} (failed: {r.description})"
        for r in results
        if r.status != "passed" and r.blocking
    ]


def build_publication_asset(
    published_tables: Sequence[dg.AssetKey],
    required_checks: Sequence[dg.AssetCheckKey],
    incremental_keys: Mapping[str, Sequence[str]],
) -> dg.AssetsDefinition:
    """`incremental_keys`: the tables of incremental models with their unique key, published
    by their changes (boussole/publication.py)."""

    @dg.asset(
        name="published_mart",
        group_name="publication",
        deps=list(published_tables),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description=(
            "The audited KPI mart that analysts and BI tools read, replaced atomically "
            "only when every guarding check passed in the same run (or in the runs it "
            "re-executes, back to the one that built the warehouse)."
        ),
    )
    def published_mart(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        settings: SettingsResource,
    ):
        build = recorded_build(settings.get().dbt_state_dir)
        audited_by = audited_runs(context.instance, context.run_id, build and build["run_id"])
        checks = run_check_results(context.instance, audited_by, required_checks)
        problems = checks_not_passed(checks)
        if problems:
            raise_check_alerts(context.log, settings.get(), context.run_id, checks)
            raise PublicationRefused(
                description="Publication refused, the published mart is unchanged: "
                + "; ".join(problems)
            )
        # Until the new mart is recorded as published from this run's build, none is current.
        forget_publication(settings.get())
        recording = Recording(
            settings.get().history_path,
            context.run_id,
            settings.get().refuse_key_restatements,
            audited_by=tuple(audited_by),
        )
        try:
            published = publish_marts(
                warehouse.path_obj,
                settings.get().published_mart_path,
                recording,
                checks,
                incremental_keys,
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
        with duckdb.connect(str(settings.get().history_path)) as history:
            delivery = notify_alerts(
                context.log, history, published.alerts_raised, settings.get().alert_webhook_url
            )
        # What it was built from: a later run with nothing new leaves it as it is.
        record_publication(settings.get(), audited_by[-1])
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(published.path)),
                "tables": dg.MetadataValue.json(published.row_counts),
                # The incremental tables carried from the served mart, with the rows written.
                "rows_changed": dg.MetadataValue.json(published.rows_changed),
                "dagster/row_count": published.row_counts.get("kpi_values", 0),
                "checks_verified": len(required_checks),
                "publication_id": published.publication_id,
                "restatements": published.restatements,
                # Recording the publication and detecting restatements, within this step.
                "history_seconds": round(published.history_seconds, 3),
                "restated_values": dg.MetadataValue.md(
                    "\n".join(f"- {line}" for line in restated) or "none"
                ),
                "trust_status": dg.MetadataValue.json(published.trust),
                "alerts_raised": len(published.alerts_raised),
                "alerts": dg.MetadataValue.md(
                    "\n".join(
                        f"- [{alert.severity}] {alert.message}" for alert in published.alerts_raised
                    )
                    or "none"
                ),
                "alerts_notified": (
                    "no webhook set"
                    if delivery is None
                    else "delivered"
                    if delivery.ok
                    else f"not delivered: {delivery.error}"
                ),
                "preview": dg.MetadataValue.md(f"```\n{kpi_summary_table(published.path)}\n```"),
            }
        )

    return published_mart


def raise_check_alerts(
    log: dg.DagsterLogManager,
    settings: Settings,
    run_id: str,
    checks: Sequence[alerts.CheckResult],
) -> None:
    """The alerts of a run stopped at its checks, which never reached the KPIs: only the
    alerts of checks open or close."""
    ensure_history(settings.history_path)
    with duckdb.connect(str(settings.history_path)) as history:
        raised = alerts.update_alerts(
            history,
            run_id,
            datetime.now(UTC),
            alerts.check_conditions(checks),
            evaluated_kinds=("check_failed", "check_could_not_run"),
        )
        notify_alerts(log, history, raised, settings.alert_webhook_url)


@dg.failure_hook(required_resource_keys={"settings"})
def alert_on_failed_checks(context: dg.HookContext) -> None:
    """A blocking check that fails fails its step, and the run stops before the publication:
    the alerts of the checks the run evaluated are raised here."""
    checks = run_check_results(context.instance, [context.run_id], required=())
    if any(check.status != "passed" for check in checks):
        raise_check_alerts(context.log, context.resources.settings.get(), context.run_id, checks)


def notify_alerts(
    log: dg.DagsterLogManager,
    history: duckdb.DuckDBPyConnection,
    raised: Sequence[alerts.Alert],
    webhook_url: str | None,
) -> alerts.Delivery | None:
    """Logs the alerts raised (errors for critical ones) and posts every alert not notified
    yet (these, and any an earlier post failed to deliver) to the webhook, if one is set."""
    for alert in raised:
        (log.error if alert.severity == "critical" else log.warning)(
            f"alert ({alert.kind}, {alert.severity}): {alert.message}"
        )
    delivery = alerts.notify(history, alerts.unnotified_alerts(history), webhook_url)
    if delivery is not None and not delivery.ok:
        log.warning(
            f"the alerts could not be posted to the webhook after {delivery.attempts} "
            f"attempt(s): {delivery.error}; the next run tries again"
        )
    return delivery

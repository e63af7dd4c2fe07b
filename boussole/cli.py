"""The `boussole` command: sample data, the pipeline through Dagster, and the UI."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from boussole.sample_data import FAULTS, SampleScale
from boussole.settings import PROJECT_ROOT, Settings, SettingsError

EXIT_REFUSED = 1
EXIT_USAGE = 2
# As a shell reports a process stopped by SIGINT.
EXIT_INTERRUPTED = 130
# The error of a step that Ctrl-C, or Terminate in the Dagster UI, interrupted.
INTERRUPTED_ERROR = "DagsterExecutionInterruptedError"

logger = logging.getLogger("boussole")


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from error


# --- generate ---------------------------------------------------------------------------


def command_generate(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from boussole.sample_data import generate

    landing = Path(args.landing_dir).resolve() if args.landing_dir else settings.landing_dir
    if args.if_empty and landing.is_dir() and any(landing.iterdir()):
        print(f"Landing folder {landing} already holds extracts: nothing generated.")
        return 0
    unknown = set(args.fault) - FAULTS
    if unknown:
        print(f"unknown fault(s) {sorted(unknown)}; choose from {sorted(FAULTS)}", file=sys.stderr)
        return EXIT_USAGE
    if args.end < args.start:
        print("--end is before --start", file=sys.stderr)
        return EXIT_USAGE
    scale = SampleScale(**{knob.name: getattr(args, knob.name) for knob in fields(SampleScale)})
    total_days = (args.end - args.start).days + 1
    with tqdm(total=total_days, unit="day", desc="generating extracts") as bar:
        summary = generate(
            landing,
            seed=args.seed,
            start=args.start,
            end=args.end,
            scale=scale,
            faults=frozenset(args.fault),
            progress=lambda done, _total: bar.update(done - bar.n),
        )
    rows = sum(summary.rows_by_object.values())
    print(f"Wrote {summary.files_written} files ({rows} records) into {landing}")
    return 0


# --- run ----------------------------------------------------------------------------------


def dagster_instance():
    """The Dagster instance of DAGSTER_HOME when it is set, else the project-local one: the
    project root's dagster.yaml, which names its storage relative to the root, as `dagster dev`
    sees it from there."""
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(PROJECT_ROOT)
        os.chdir(PROJECT_ROOT)
    return DagsterInstance.get()


def extract_date_range(
    settings: Settings, start: date | None = None, end: date | None = None
) -> tuple[str, str] | None:
    """The first and last extract dates of the landing folder from `start` to `end`, or None
    (with the reason on stderr) when there is nothing the pipeline can run."""
    from boussole.ingestion.contracts import extract_dates

    found = [
        d
        for d in extract_dates(settings.landing_dir)
        if (start is None or d >= start) and (end is None or d <= end)
    ]
    if not found:
        print(
            f"No extracts in {settings.landing_dir} (expected <source>/<YYYY-MM-DD>/ folders). "
            "Run `boussole generate` for sample data, or set BOUSSOLE_LANDING_DIR.",
            file=sys.stderr,
        )
        return None
    too_early = [d for d in found if d < settings.first_extract_date]
    if too_early:
        print(
            f"Extract dates from {too_early[0]} are before BOUSSOLE_FIRST_EXTRACT_DATE="
            f"{settings.first_extract_date}; set it earlier to ingest them.",
            file=sys.stderr,
        )
        return None
    return found[0].isoformat(), found[-1].isoformat()


def _failed_checks(result, severity: str) -> list[str]:
    from dagster import DagsterEventType

    lines = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity.value == severity:
                detail = evaluation.description or ""
                lines.append(
                    f"check {evaluation.check_name} on "
                    f"{evaluation.asset_key.to_user_string()} failed: {detail}".rstrip(": ")
                )
    return lines


def _step_errors(result) -> Iterator[tuple[object, object]]:
    """Each failed step's event, with its error's innermost cause (Dagster wraps the user
    error: the cause says what went wrong)."""
    from dagster import DagsterEventType

    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            yield event, error


def _interrupted(result) -> bool:
    return any(error and error.cls_name == INTERRUPTED_ERROR for _, error in _step_errors(result))


def _failure_report(result) -> list[str]:
    """What stopped the run, in words: failed blocking checks first, then failed steps (with
    the records a failed dbt build names, boussole/poison.py)."""
    from orchestration.quarantine import named_records

    lines = _failed_checks(result, "ERROR")
    for event, error in _step_errors(result):
        if error and error.cls_name == INTERRUPTED_ERROR:
            lines.append(f"step {event.step_key} interrupted (Ctrl-C, or Terminate in the UI)")
            continue
        message = error.message.strip().splitlines()[0] if error else ""
        lines.append(f"step {event.step_key} failed: {message}")
        lines += named_records(event.event_specific_data)
    return lines


def _what_to_run(
    settings: Settings, found: tuple[str, str], full_refresh: bool
) -> tuple[tuple[str, str], str | None]:
    """Without --start and --end: the extract dates with files the loader has not read as they
    are now (new or changed), else the latest one (a build of what is loaded), unless nothing
    needs building at all: then also the run that published the current mart. All the dates
    `found` when the warehouse cannot tell (none yet, or another process writes it)."""
    import duckdb

    from boussole.audit_scope import current_build_digest, current_publication
    from boussole.ingestion.loader import extract_dates_to_read

    if not settings.build_warehouse_path.exists():
        return found, None
    try:
        with duckdb.connect(str(settings.build_warehouse_path), read_only=True) as conn:
            to_read = extract_dates_to_read(conn, settings.landing_dir)
        if to_read:
            return (to_read[0].isoformat(), to_read[-1].isoformat()), None
        if to_read is None:
            return found, None
        if not full_refresh:
            published_by = current_publication(settings, current_build_digest(settings))
            if published_by:
                return found, published_by
    except duckdb.Error:
        return found, None
    return (found[1], found[1]), None


def _published_in(result) -> bool:
    return bool(result.asset_materializations_for_node("published_mart"))


def key_refused(settings: Settings, rotating: bool = False) -> bool:
    """Says why on stderr when the pseudonymisation key may not be used (boussole/pii_key.py;
    the dbt step of every run checks the same)."""
    from boussole.pii_key import key_refusal, reading_warehouse

    with reading_warehouse(settings) as warehouse:
        refused = key_refusal(settings, warehouse, rotating)
    if refused:
        print(f"Refused: {refused}", file=sys.stderr)
    else:
        settings.warn_if_insecure()
    return bool(refused)


def command_run(args: argparse.Namespace, settings: Settings) -> int:
    partition_range = extract_date_range(settings, args.start, args.end)
    if partition_range is None:
        return EXIT_USAGE
    if key_refused(settings):
        return EXIT_USAGE
    if args.start is None and args.end is None:
        partition_range, published_by = _what_to_run(settings, partition_range, args.full_refresh)
        if published_by:
            from boussole.publication import kpi_summary_table

            print(
                f"Nothing new in {settings.landing_dir} since run {published_by} built, "
                "audited and published the mart (same files, dbt project, suites and settings): "
                "it is unchanged."
            )
            print(f"\nPublished mart: {settings.published_mart_path}")
            print(kpi_summary_table(settings.published_mart_path))
            return 0
    return _run_pipeline(settings, partition_range, args.log_level, args.full_refresh)


def _run_pipeline(
    settings: Settings,
    partition_range: tuple[str, str],
    log_level: str,
    full_refresh: bool,
    rotate_key: bool = False,
) -> int:
    """The pipeline job through Dagster over `partition_range`; the report of what it did."""
    instance = dagster_instance()

    from boussole.dbt_invocation import stop_unfinished_builds
    from boussole.run_progress import step_progress
    from orchestration.automation import partition_range_tags
    from orchestration.definitions import defs
    from orchestration.recovery import process_tags, recover_dead_runs

    # A run killed earlier (kill -9, a reboot) would otherwise hold the warehouse pool forever.
    for recovered in recover_dead_runs(instance):
        print(f"Recovered after a crash: {recovered.message}")

    job = defs.resolve_job_def("boussole_pipeline")
    first, last = partition_range
    print(f"Running the pipeline through Dagster for extract dates {first} to {last}")
    started = datetime.now(UTC)
    run_id = str(uuid.uuid4())
    step_output = settings.run_logs_dir / f"{run_id}.log"
    print(f"Step output (dbt's log and others): {step_output}")
    with (
        _stdout_to(step_output),
        step_progress(instance, run_id, total_steps=len(job.graph.node_dict)),
    ):
        result = job.execute_in_process(
            instance=instance,
            run_id=run_id,
            tags={**partition_range_tags(first, last), **process_tags()},
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": log_level}}},
                "ops": {
                    "dbt_models": {
                        "config": {"full_refresh": full_refresh, "rotate_key": rotate_key}
                    }
                },
            },
        )
    # A step interrupted between two of its events may have left its dbt build running.
    stop_unfinished_builds()
    _print_ingestion_report(settings, started)
    if not result.success:
        if _published_in(result):
            # Only a step after the publication failed (the PostgreSQL load, the dashboard).
            print(
                f"\nPublished mart: {settings.published_mart_path}, but a step after the "
                "publication failed (postgres_mart: once fixed, boussole publish-postgres):",
                file=sys.stderr,
            )
        elif _interrupted(result):
            print(
                "\nInterrupted: the published mart is unchanged. What the run committed stays; "
                "the next `boussole run` carries on.",
                file=sys.stderr,
            )
        else:
            print("\nPublication refused: the published mart is unchanged.", file=sys.stderr)
        for line in _failure_report(result):
            print(f"  - {line}", file=sys.stderr)
        _print_alerts(settings, result.run_id, file=sys.stderr)
        print(f"Dagster run {result.run_id}", file=sys.stderr)
        return EXIT_INTERRUPTED if _interrupted(result) else EXIT_REFUSED
    from boussole.publication import kpi_summary_table

    published = _published_in(result)
    warnings = _failed_checks(result, "WARN")
    if warnings:
        print(
            f"\n{'Published' if published else 'Done'}, with warnings "
            "(see ingestion.load_manifest and ingestion.quarantine):"
        )
        for line in warnings:
            print(f"  - {line}")
    if not published:
        print(
            "\nNothing new since the mart was built, audited and published from the same files, "
            "dbt project, suites and settings: it is unchanged."
        )
    else:
        _print_restatements(settings)
        _print_alerts(settings, result.run_id)
    print(f"\nPublished mart: {settings.published_mart_path}")
    print(kpi_summary_table(settings.published_mart_path))
    return 0


def _print_restatements(settings: Settings) -> None:
    """The values of complete periods this publication changed (boussole/restatements.py)."""
    from boussole.restatements import report

    lines = report(settings.published_mart_path)
    if lines:
        print("\nRestated (published; see the table kpi_restatements):")
        for line in lines:
            print(f"  - {line}")


def _print_alerts(settings: Settings, run_id: str, file: TextIO = sys.stdout) -> None:
    """The alerts this run raised (boussole/alerts.py), critical first."""
    from boussole.alerts import MAX_LISTED, raised_in_run

    raised = raised_in_run(settings.history_path, run_id)
    if raised:
        print(f"\nAlerts raised ({len(raised)}; see the table alerts):", file=file)
        for alert in raised[:MAX_LISTED]:
            print(f"  - [{alert.severity}] {alert.message}", file=file)
        if len(raised) > MAX_LISTED:
            print(f"  - ... and {len(raised) - MAX_LISTED} more", file=file)


def command_accept_restatements(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.restatements import accept_refused, describe

    accepted = accept_refused(settings.history_path, args.reason)
    if not accepted:
        print("No refused restatement waits for acceptance.")
        return 0
    print(f"Accepted ({len(accepted)}), the next `boussole run` publishes them:")
    for row in accepted:
        print(f"  - {describe(row)}")
    return 0


def command_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.pii_key import fingerprint, reading_warehouse, recorded_key, short

    partition_range = extract_date_range(settings)
    if partition_range is None:
        return EXIT_USAGE
    if key_refused(settings, rotating=True):
        return EXIT_USAGE
    new = fingerprint(settings.pii_key)
    with reading_warehouse(settings) as warehouse:
        recorded = recorded_key(settings, warehouse)
    if recorded is None:
        print("No pseudonym was made yet: `boussole run` makes them with this key.")
        return 0
    if recorded.fingerprint == new and not recorded.rotating:
        print(f"The pseudonyms are already made with this key (fingerprint {short(new)}).")
        return 0
    unfinished = ", a rotation that did not finish" if recorded.rotating else ""
    print(
        f"Making every pseudonym again with the key of fingerprint {short(new)} (recorded: "
        f"{short(recorded.fingerprint)}{unfinished}): every model is built again (a full "
        "refresh), audited and published."
    )
    partition_range, _ = _what_to_run(settings, partition_range, full_refresh=True)
    return _run_pipeline(
        settings, partition_range, args.log_level, full_refresh=True, rotate_key=True
    )


def _print_ingestion_report(settings: Settings, started: datetime) -> None:
    """What this run's ingestion set aside (failed, duplicate, replaced, quarantined) and what
    the landing folder holds that is ignored, so that nothing is left out without a word."""
    import duckdb

    from boussole.ingestion.loader import ingestion_report

    if not settings.build_warehouse_path.exists():
        return
    with duckdb.connect(str(settings.build_warehouse_path), read_only=True) as conn:
        try:
            lines = ingestion_report(conn, started)
        except duckdb.CatalogException:  # the run stopped before any ingestion
            return
    if lines:
        print("\nIngestion set aside (see ingestion.load_manifest and ingestion.quarantine):")
        for line in lines:
            print(f"  - {line}")


@contextmanager
def _stdout_to(path: Path) -> Iterator[None]:
    """Sends file descriptor 1 to `path` for the block, so that what the steps and their
    subprocesses print (dbt's node-by-node log) lands in a file instead of between the
    progress bar and the summary; the Dagster UI keeps its own copy (compute logs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 1)
            try:
                yield
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def command_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.poison import RecordRef

    try:
        records = [RecordRef.parse(text) for text in args.records]
    except ValueError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    if not settings.build_warehouse_path.exists():
        print(f"No build warehouse at {settings.build_warehouse_path}", file=sys.stderr)
        return EXIT_USAGE
    instance = dagster_instance()

    from orchestration.quarantine import quarantine_by_hand
    from orchestration.recovery import recover_dead_runs

    # A dead run's slot would keep the quarantine waiting for the warehouse pool forever.
    for recovered in recover_dead_runs(instance):
        print(f"Recovered after a crash: {recovered.message}")
    result = quarantine_by_hand(instance, settings, records, args.reason, args.field)
    if not result.success:
        print("Nothing quarantined:", file=sys.stderr)
        for line in _failure_report(result):
            print(f"  - {line}", file=sys.stderr)
        return EXIT_REFUSED
    for line in result.output_for_node("quarantine_records_by_hand"):
        print(line)
    print(
        "The next `boussole run` (or the schedule's, or the sensor's) builds without them and "
        "publishes."
    )
    return 0


def command_postgres(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.postgres import build_on_postgres

    if key_refused(settings):
        return EXIT_USAGE

    dbt_args = ["build", *(["--full-refresh"] if args.full_refresh else [])]
    return build_on_postgres(settings, dbt_args, os.environ)


def command_publish_postgres(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.postgres_publication import publish_to_postgres
    from boussole.settings import POSTGRES_PUBLISH_VARIABLE, PostgresPublishing

    if not settings.published_mart_path.exists():
        print(f"No published mart at {settings.published_mart_path}: run `boussole run` first")
        return EXIT_USAGE
    # On demand, whether or not each publication does it.
    target = PostgresPublishing.from_env({**os.environ, POSTGRES_PUBLISH_VARIABLE: "1"})
    published = publish_to_postgres(settings.published_mart_path, target)
    print(
        f"Served {len(published.row_counts)} tables ({sum(published.row_counts.values()):,} rows) "
        f"in PostgreSQL {target.host}:{target.port}/{target.dbname}, schema {published.schema}, "
        f"read by the role {target.reader_role}, in {published.seconds:.1f} s"
    )
    return 0


# --- kpi / semantic layer --------------------------------------------------------------------


def command_kpi(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.kpi_catalogue import KpiCatalogue
    from boussole.kpis import render_list, render_show

    if args.kpi_command == "list":
        print(render_list(KpiCatalogue.load(settings), args.lang))
        return 0
    try:
        print(render_show(settings, args.kpi_id, args.lang, args.grain))
    except KeyError:
        known = ", ".join(kpi["id"] for kpi in KpiCatalogue.load(settings).kpis)
        print(f"unknown KPI {args.kpi_id!r}; the catalogue holds: {known}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def command_semantic_layer(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.kpi_catalogue import KpiCatalogue
    from boussole.semantic_layer import GENERATED_FILE, write_semantic_layer

    written = write_semantic_layer(KpiCatalogue.from_project_files())
    print(f"{GENERATED_FILE} {'written' if written else 'already matches the catalogue'}")
    return 0


def command_dbt(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.dbt_invocation import DbtInvocation

    invocation = DbtInvocation(settings)
    target_path = invocation.new_target_path(lane="by-hand")
    print(f"dbt's artifacts and log: {target_path}", file=sys.stderr)
    return invocation.run(*args.dbt_args, target_path=target_path).returncode


def command_mf(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.semantic_layer import run_metricflow

    return run_metricflow(settings, args.mf_args).returncode


# --- prepare / ui -----------------------------------------------------------------------------


def command_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.dbt_manifest import ensure_manifest

    path = ensure_manifest(settings, force=args.force)
    print(f"dbt manifest ready: {path}")
    if args.sqlfluff_config:
        from boussole.dbt_invocation import DbtInvocation

        args.sqlfluff_config.write_text(DbtInvocation(settings).sqlfluff_config())
        print(f"sqlfluff config for the dbt templater: {args.sqlfluff_config}")
    return 0


def command_ui(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.dbt_manifest import ensure_manifest

    ensure_manifest(settings)
    dagster = Path(sys.executable).parent / "dagster"
    os.chdir(PROJECT_ROOT)
    os.execv(str(dagster), [str(dagster), "dev", "--port", str(args.port)])
    return 0  # not reached: exec replaces this process


def command_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from boussole.dashboard import (
        DashboardBuildFailed,
        DashboardUnavailable,
        build_dashboard,
        needs_build,
        serve,
        site_path,
    )

    site = site_path(settings.data_dir)
    if not settings.published_mart_path.exists():
        print(f"No published mart yet ({settings.published_mart_path}): run `boussole run` first.")
        return EXIT_USAGE
    if args.rebuild or needs_build(settings.published_mart_path, site):
        print("Building the dashboard from the published mart...")
        try:
            built = build_dashboard(settings.published_mart_path, site)
        except (DashboardUnavailable, DashboardBuildFailed) as problem:
            print(f"dashboard not built: {problem}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"Built {built.pages} pages in {built.seconds:.0f} s: {built.site}")
    server = serve(site, args.port)
    print(f"Dashboard on http://localhost:{args.port}/ (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# --- parser ---------------------------------------------------------------------------------


def _add_log_level(command: argparse.ArgumentParser) -> None:
    """The option of the commands that run the pipeline through Dagster."""
    command.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster console log level (default WARNING; the progress bar shows the steps)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="boussole",
        description="Boussole: KPI pipeline over CRM, web analytics and support extracts. "
        "Configuration comes from BOUSSOLE_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate",
        help="write deterministic sample extracts into the landing folder",
        description="Write HubSpot-, GA4- and Zendesk-shaped sample extracts, one folder per "
        "source and extract date, into the landing folder (BOUSSOLE_LANDING_DIR).",
    )
    generate.add_argument("--landing-dir", help="write here instead of BOUSSOLE_LANDING_DIR")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument(
        "--start",
        type=_parse_date,
        default=date(2026, 1, 1),
        help="first extract date (default 2026-01-01)",
    )
    generate.add_argument(
        "--end",
        type=_parse_date,
        default=date(2026, 3, 31),
        help="last extract date (default 2026-03-31)",
    )
    # One option per knob of SampleScale, with its default: the generator owns the numbers.
    for knob in fields(SampleScale):
        generate.add_argument(
            f"--{knob.name.replace('_', '-')}",
            type=type(knob.default),
            default=knob.default,
            help=f"{knob.name.replace('_', ' ')} (default {knob.default})",
        )
    generate.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help=f"inject a bad input (repeatable): {', '.join(sorted(FAULTS))}",
    )
    generate.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the landing folder already holds files",
    )
    generate.set_defaults(handler=command_generate)

    run = commands.add_parser(
        "run",
        help="ingest, transform, audit and publish through Dagster",
        description="Materialise every asset through Dagster for every extract date found in "
        "the landing folder (or the --start/--end range), audit, and publish the KPI mart. "
        "Exits with status 1 when publication was refused.",
    )
    run.add_argument("--start", type=_parse_date, help="first extract date to ingest")
    run.add_argument("--end", type=_parse_date, help="last extract date to ingest")
    _add_log_level(run)
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild dbt's incremental models from all raw rows (daily runs process new "
        "data only; the figures are the same)",
    )
    run.set_defaults(handler=command_run)

    postgres = commands.add_parser(
        "postgres",
        help="build the dbt project on PostgreSQL from the ingested data",
        description="Copy the ingested tables of the build warehouse (raw_* schemas and the "
        "load manifest) into PostgreSQL, then run `dbt build` there (profile target postgres; "
        "connection from BOUSSOLE_PG_HOST, _PORT, _USER, _PASSWORD and _DATABASE). Run after "
        "`boussole run`. Exits with dbt's status.",
    )
    postgres.add_argument(
        "--full-refresh", action="store_true", help="rebuild the incremental models in full"
    )
    postgres.set_defaults(handler=command_postgres)

    publish_postgres = commands.add_parser(
        "publish-postgres",
        help="load the published mart into PostgreSQL now, for BI tools",
        description="Load every table of the published mart into a new PostgreSQL schema and "
        "swap it in for the served one (BOUSSOLE_PG_SCHEMA, default published) in one "
        "transaction; ensure the read-only role BI tools log in as (BOUSSOLE_PG_READER_ROLE, "
        "default boussole_reader; password from BOUSSOLE_PG_READER_PASSWORD). Connection from "
        "BOUSSOLE_PG_HOST, _PORT, _USER, _PASSWORD and _DATABASE. Each `boussole run` does it "
        "after publishing when BOUSSOLE_PG_PUBLISH=1.",
    )
    publish_postgres.set_defaults(handler=command_publish_postgres)

    quarantine = commands.add_parser(
        "quarantine",
        help="move raw records that fail the build to ingestion.quarantine",
        description="Move the named raw records (as a failed `boussole run` names them: "
        "<file>:<record number>, the file relative to the landing folder) from their raw table "
        "to ingestion.quarantine with the reason, marked as set by hand; their files' counts in "
        "ingestion.load_manifest follow (read = loaded + quarantined). The incremental models "
        "that read them are dropped, so the next run rebuilds them from raw, and the next run "
        "builds and publishes even with no new file. Waits while a pipeline step holds the "
        "build warehouse. Exits with status 1, changing nothing, when a record is neither in "
        "raw nor in quarantine.",
    )
    quarantine.add_argument(
        "records", nargs="+", metavar="FILE:RECORD", help="e.g. crm/2026-01-05/deals.jsonl:3"
    )
    quarantine.add_argument("--reason", required=True, help="why (kept in the quarantine row)")
    quarantine.add_argument("--field", help="the field at fault, when known")
    quarantine.set_defaults(handler=command_quarantine)

    rotate = commands.add_parser(
        "rotate-key",
        help="make every pseudonym again under a new BOUSSOLE_PII_KEY",
        description="Move to the pseudonymisation key now in BOUSSOLE_PII_KEY on purpose: a run "
        "through Dagster that ingests what is new, rebuilds every dbt model (a full refresh) so "
        "that every pseudonym (the *_hash columns) is made with the new key, audits and "
        "publishes; the fingerprint of the new key replaces the old one in the build warehouse "
        "and in the published mart. Until it succeeds, runs with either key are refused; run it "
        "again. Exits with status 1 when publication was refused.",
    )
    _add_log_level(rotate)
    rotate.set_defaults(handler=command_rotate_key)

    accept = commands.add_parser(
        "accept-restatements",
        help="accept the restatements of key KPIs that refused publication",
        description="With BOUSSOLE_REFUSE_KEY_RESTATEMENTS=1, a restatement of a key KPI refuses "
        "publication. This records, in the publication history, that you (the OS user) accept "
        "every refused one, and why; the next `boussole run` publishes them with that "
        "acceptance (table kpi_restatements). A later, different change is refused again.",
    )
    accept.add_argument("--reason", required=True, help="why the restated values are right")
    accept.set_defaults(handler=command_accept_restatements)

    kpi = commands.add_parser(
        "kpi",
        help="a KPI's definition, compiled SQL, checks and latest values",
        description="`kpi list`: the KPIs of the catalogue by category, with labels and units. "
        "`kpi show ID`: the KPI's definition (labels, formula, unit, direction, grains, slices, "
        "sources, targets), its compiled SQL, the checks that guard it and its latest values "
        "in the published mart, with status and trust.",
    )
    kpi.add_argument("--lang", choices=("fr", "en"), default="en", help="labels (default en)")
    kpi_commands = kpi.add_subparsers(dest="kpi_command", required=True, metavar="ACTION")
    kpi_commands.add_parser("list", help="the KPIs by category")
    kpi_show = kpi_commands.add_parser("show", help="one KPI")
    kpi_show.add_argument("kpi_id", metavar="ID", help="a KPI id, e.g. win_rate")
    kpi_show.add_argument(
        "--grain", default="month", help="grain of the latest values (default month)"
    )
    kpi.set_defaults(handler=command_kpi)

    semantic = commands.add_parser(
        "semantic-layer",
        help="write the MetricFlow semantic layer again from the KPI catalogue",
        description="Generate dbt_project/models/semantic/_semantic__kpis.yml (MetricFlow "
        "semantic models and metrics) from the KPI catalogue; run after changing it.",
    )
    semantic.set_defaults(handler=command_semantic_layer)

    mf = commands.add_parser(
        "mf",
        help="MetricFlow's `mf` on the build warehouse",
        description="Run MetricFlow's `mf` with the arguments given, on the build warehouse of "
        "the settings, e.g. `boussole mf query --metrics revenue --group-by metric_time__month`.",
    )
    mf.add_argument("mf_args", nargs=argparse.REMAINDER, metavar="ARGS", help="mf's arguments")
    mf.set_defaults(handler=command_mf)

    dbt = commands.add_parser(
        "dbt",
        help="dbt on the build warehouse, with the pipeline's vars and environment",
        description="Run dbt with the arguments given as the pipeline runs it (profile, vars, "
        "environment; artifacts under the data folder), e.g. `boussole dbt build --select "
        "kpi_values`. Figures are as of today unless BOUSSOLE_AS_OF_DATE (ISO) says otherwise.",
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="ARGS", help="dbt's arguments")
    dbt.set_defaults(handler=command_dbt)

    prepare = commands.add_parser(
        "prepare",
        help="parse the dbt project into the manifest Dagster reads",
        description="Run `dbt parse` when the manifest is missing or older than the dbt project.",
    )
    prepare.add_argument("--force", action="store_true", help="parse even when up to date")
    prepare.add_argument(
        "--sqlfluff-config",
        type=Path,
        metavar="FILE",
        help="also write FILE, the config to give `sqlfluff lint --config` (the dbt vars that "
        "dbt_project.yml cannot hold)",
    )
    prepare.set_defaults(handler=command_prepare)

    ui = commands.add_parser(
        "ui",
        help="start the Dagster UI (dagster dev) on the project",
        description="Start `dagster dev` from the project root with the project-local instance.",
    )
    ui.add_argument("--port", type=int, default=3000, help="web port (default 3000)")
    ui.set_defaults(handler=command_ui)

    dashboard = commands.add_parser(
        "dashboard",
        help="build the KPI dashboard if needed and serve it on localhost",
        description="Build the Evidence dashboard (dashboard/) from the published mart when it "
        "is missing or older than the mart or the project, then serve it on localhost.",
    )
    dashboard.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    dashboard.add_argument("--rebuild", action="store_true", help="build even when up to date")
    dashboard.set_defaults(handler=command_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Only Boussole's own messages here: Dagster prints its run log through its own logger.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return args.handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())

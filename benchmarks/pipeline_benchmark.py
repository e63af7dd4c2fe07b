"""End-to-end benchmark: generate sample extracts at a chosen scale, run the whole pipeline
through Dagster (as `boussole run` does), and print the time of each stage, rows per second,
and the ingestion time against a plain DuckDB load of the same files, measured in one run.
Then the dbt build time of each layer (staging, intermediate, marts, kpi), from dbt's
run_results.json: a full refresh at that volume, the daily incremental run that follows one
more extract day (generated with the others, held back, then ingested), and a run with no new
data at all (the fixed cost of a run: dbt's own time per model, and what each model reads to
find that nothing changed). dbt runs these with one thread: with two, small models overlap and
each one's time includes the other's, which inflates the sums of a run of many small models.
Last, whole `boussole run` commands timed as a user times them (a process from start to exit,
ingestion to publication): a full refresh, the daily run of one more held-back extract day, and
a run with nothing new, with their ratio to the full refresh.

    .venv/bin/python benchmarks/pipeline_benchmark.py --web-events 1000000 --days 30

Everything is written under --workdir (default benchmarks/output/, git-ignored), with its
own Dagster instance; the project's own data and run history are not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boussole.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The part of the publication step that keeps the history and detects restatements.
HISTORY = "history and restatements"
# The part of the dbt step spent in data tests (the sum of their node times).
DBT_TESTS = "dbt tests"
SUITES_STEP = "great_expectations_suites"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--web-events",
        type=int,
        default=1_000_000,
        help="approximate number of GA4 events in all (default 1,000,000)",
    )
    parser.add_argument("--days", type=int, default=30, help="extract days (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    # Absolute: the Dagster instance under it requires an absolute DAGSTER_HOME.
    parser.add_argument(
        "--workdir",
        type=lambda text: Path(text).resolve(),
        default=PROJECT_ROOT / "benchmarks" / "output",
    )
    parser.add_argument(
        "--keep-landing",
        action="store_true",
        help="reuse the landing folder of a previous run with the same scale",
    )
    parser.add_argument(
        "--only-ingestion",
        action="store_true",
        help=(
            "materialise the ingestion assets and their checks only "
            "(no dbt, mart suites or publication)"
        ),
    )
    return parser.parse_args()


def prepare_environment(workdir: Path) -> Path:
    landing, data, dagster_home = workdir / "landing", workdir / "data", workdir / "dagster_home"
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(dagster_home, ignore_errors=True)
    dagster_home.mkdir(parents=True)
    # Project settings (concurrency pools, telemetry off) with storage under the workdir.
    import yaml

    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    for key in ("storage", "local_artifact_storage", "compute_logs"):
        config.pop(key, None)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    os.environ.update(
        BOUSSOLE_LANDING_DIR=str(landing),
        BOUSSOLE_DATA_DIR=str(data),
        DAGSTER_HOME=str(dagster_home),
        BOUSSOLE_PII_KEY="benchmark-pseudonymisation-key",
    )
    return landing


def generate_landing(landing: Path, next_day: Path, args: argparse.Namespace) -> float:
    """The extract days of the run, and two more held back in `next_day`: one for the daily
    incremental dbt build, one for the daily `boussole run` (generated together, so their late
    events continue the days before)."""
    from boussole.sample_data import SampleScale, generate

    start = date(2026, 1, 1)
    end = start + timedelta(days=args.days + 1)
    scale = SampleScale(web_events_per_day=max(1, args.web_events // args.days))
    began = time.perf_counter()
    generate(landing, seed=args.seed, start=start, end=end, scale=scale)
    for held_back in (end - timedelta(days=1), end):
        for day_folder in landing.glob(f"*/{held_back.isoformat()}"):
            target = next_day / day_folder.parent.name / day_folder.name
            target.parent.mkdir(parents=True, exist_ok=True)
            day_folder.rename(target)
    return time.perf_counter() - began


def land_held_back_day(landing: Path, next_day: Path, which: int) -> date:
    """Copies the folders of the `which`-th held-back extract date into the landing folder."""
    extract_date = sorted({folder.name for folder in next_day.glob("*/*")})[which]
    for day_folder in next_day.glob(f"*/{extract_date}"):
        target = landing / day_folder.parent.name / day_folder.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(day_folder, target)
    return date.fromisoformat(extract_date)


def plain_scan_seconds(landing: Path, workdir: Path) -> tuple[float, int]:
    """The floor for ingestion: DuckDB copying every web events record into a table of a
    database file, with no lineage, checksum, validation or quarantine."""
    import duckdb

    floor_db = workdir / "plain_scan.duckdb"
    floor_db.unlink(missing_ok=True)
    began = time.perf_counter()
    conn = duckdb.connect(str(floor_db))
    conn.execute(
        "create table events as select json as record "
        "from read_json_objects(?, format = 'newline_delimited')",
        [str(landing / "web" / "*" / "events*.jsonl*")],
    )
    rows = conn.execute("select count(*) from events").fetchone()[0]
    conn.close()
    seconds = time.perf_counter() - began
    floor_db.unlink()
    return seconds, rows


def run_pipeline(settings: Settings, only_ingestion: bool) -> tuple[float, dict[str, float], str]:
    from boussole.cli import dagster_instance, extract_date_range

    began = time.perf_counter()
    instance = dagster_instance()
    from orchestration.automation import partition_range_tags
    from orchestration.definitions import defs

    first, last = extract_date_range(settings)
    job = defs.resolve_job_def("boussole_pipeline")
    loaded = time.perf_counter()
    ingestion_keys = [
        key for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] == "raw"
    ]
    result = job.execute_in_process(
        instance=instance,
        asset_selection=ingestion_keys if only_ingestion else None,
        tags=partition_range_tags(first, last),
        raise_on_error=True,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    total = time.perf_counter() - began
    stages = {"definitions load": loaded - began}
    for stats in instance.get_run_step_stats(result.run_id):
        stages[stats.step_key] = stats.end_time - stats.start_time
    return total, stages, result.run_id


def layer_of(node: dict) -> str:
    """staging, intermediate, marts or kpi (the folder of models/ the node is in)."""
    path = node["original_file_path"].replace("\\", "/")
    return path.split("/")[1] if path.startswith("models/") else node["resource_type"]


def dbt_layer_seconds(
    settings: Settings, args: list[str]
) -> tuple[float, dict[tuple[str, str], float], float, int]:
    """Runs dbt as the pipeline does, then sums the execution time of its nodes per layer and
    kind: building (models, seeds) or testing (a test counts in the layer of the model it
    tests). Returns the wall time, the sums by (layer, kind), the SQL time of the models and
    seeds, and how many models and seeds were built."""
    import json

    from boussole.dbt_invocation import warehouse_build

    # As the pipeline does: figures as of the latest extract loaded, the unchanged views and
    # reference models of the last build reused (not on a full refresh), and the unit tests
    # left out when the build tests the rows it writes.
    no_reuse = "full refresh" if "--full-refresh" in args else None
    with warehouse_build(settings, no_reuse) as build:
        target = build.invocation.new_target_path()
        began = time.perf_counter()
        result = build.run(
            *args,
            # Structured log events, in one file (dbt rolls its log over at 10 MB by default):
            # the time of each SQL statement, read below.
            *("--log-format-file", "json", "--log-file-max-bytes", "0"),
            target_path=target,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - began
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}")
    build.record(target / "manifest.json")
    log = target / "dbt.log"
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    runs = json.loads((target / "run_results.json").read_text())["results"]
    seconds: dict[tuple[str, str], float] = {}
    for run in runs:
        node = nodes[run["unique_id"]]
        kind = "build"
        if node["resource_type"] in ("test", "unit_test"):
            kind = "test"
            tested = node.get("attached_node") or node["depends_on"]["nodes"][-1]
            node = nodes.get(tested, node)
        key = (layer_of(node), kind)
        seconds[key] = seconds.get(key, 0.0) + run["execution_time"]
    built = {
        run["unique_id"]
        for run in runs
        if nodes[run["unique_id"]]["resource_type"] in ("model", "seed")
    }
    return wall, seconds, sql_seconds(log, built), len(built)


def sql_seconds(log: Path, nodes: set[str]) -> float:
    """The time the warehouse spent on the statements of the given nodes, from dbt's JSON log:
    each statement's status event follows the event that names its connection (the node). The
    rest of a node's time is dbt's own work: compiling, materialisation macros, logging."""
    import json

    total, connection = 0.0, None
    for line in log.read_text().splitlines():
        event = json.loads(line)
        name = event["info"]["name"]
        if name == "SQLQuery":
            connection = event["data"]["conn_name"]
        elif name == "SQLQueryStatus" and connection in nodes:
            total += event["data"]["elapsed"]
    return total


def ingest_day(settings: Settings, landing: Path, extract_date: date) -> float:
    import duckdb

    from boussole.ingestion.contracts import SOURCES, landed_files
    from boussole.ingestion.loader import load_files

    began = time.perf_counter()
    conn = duckdb.connect(str(settings.build_warehouse_path))
    try:
        for source in SOURCES:
            load_files(conn, landed_files(landing, source, extract_date)[0], landing)
    finally:
        conn.close()
    return time.perf_counter() - began


def print_against_full_refresh(
    title: str, width: int, daily: str, rows: list[tuple], ratio_digits: int
) -> None:
    """Rows of (label, full refresh, daily, no new data) seconds, each beside its ratio to the
    full refresh."""
    print(
        f"  {title:<{width}}{'full refresh':>14}{daily:>14}{'/full':>11}"
        f"{'no new data':>14}{'/full':>11}"
    )
    for label, full, day, idle in rows:
        day_ratio, idle_ratio = (day / full, idle / full) if full else (float("nan"),) * 2
        print(
            f"  {label:<{width}}{full:>14.2f}{day:>14.2f}{day_ratio:>11.{ratio_digits}f}"
            f"{idle:>14.2f}{idle_ratio:>11.{ratio_digits}f}"
        )


def benchmark_layers(settings: Settings, landing: Path, next_day: Path) -> None:
    """dbt by layer: a full refresh of the built warehouse, one more extract day ingested and
    built incrementally, then a run with nothing new."""
    one_thread = ["--threads", "1"]
    full_wall, full, full_sql, full_count = dbt_layer_seconds(
        settings, ["build", "--full-refresh", *one_thread]
    )
    extract_date = land_held_back_day(landing, next_day, 0)
    ingestion = ingest_day(settings, landing, extract_date)
    daily_wall, daily, daily_sql, daily_count = dbt_layer_seconds(settings, ["build", *one_thread])
    idle_wall, idle, idle_sql, idle_count = dbt_layer_seconds(settings, ["build", *one_thread])

    layers = ("staging", "intermediate", "marts", "kpi", "seed")
    runs = (full, daily, idle)

    def layer_rows(kind: str) -> list[tuple]:
        return [
            (f"{layer} {kind}", *(run.get((layer, kind), 0.0) for run in runs))
            for layer in layers
            if any((layer, kind) in run for run in runs)
        ]

    def total(kind: str) -> tuple[float, ...]:
        return tuple(sum(s for (_, k), s in run.items() if k == kind) for run in runs)

    sql = (full_sql, daily_sql, idle_sql)
    builds = total("build")
    rows = [
        *layer_rows("build"),
        ("all builds", *builds),
        ("  in SQL statements", *sql),
        ("  in dbt's own work", *(b - s for b, s in zip(builds, sql, strict=True))),
        *layer_rows("test"),
        ("all tests", *total("test")),
        ("dbt wall time", full_wall, daily_wall, idle_wall),
    ]
    print("\n  dbt by layer (sum of node times in seconds, one dbt thread; build = models and")
    print("  seeds, test = data and unit tests, counted in the layer of the model they test;")
    print("  dbt's own work = compiling, materialisation macros and logging, outside the SQL)")
    print(f"  daily run: extract {extract_date} ingested in {ingestion:.2f} s")
    print(
        f"  models and seeds built: {full_count} (full refresh), {daily_count} (incremental), "
        f"{idle_count} (no new data);\n  the others are unchanged views and reference models, "
        "reused as the pipeline does (boussole/dbt_reuse.py)"
    )
    print_against_full_refresh("layer", 22, "incremental", rows, ratio_digits=2)


def timed_run(*args: str) -> tuple[float, str, dict[str, float]]:
    """`boussole run` as a user times it (the whole process), its output, and the time of the
    steps of the Dagster run it started, if any, by kind (ingestion, dbt, suites, publication;
    skipped steps count nothing), with the part of the publication that recorded the history
    and detected restatements (HISTORY) and the part of the dbt step in data tests
    (DBT_TESTS, from the run results of the dbt invocation it made)."""
    import subprocess

    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        runs_before = {run.run_id for run in instance.get_runs()}
    began, started_at = time.perf_counter(), time.time()
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "boussole"), "run", *args],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    if completed.returncode != 0:
        raise RuntimeError(f"boussole run {' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    steps: dict[str, float] = {}
    with DagsterInstance.get() as instance:
        for run in instance.get_runs():
            if run.run_id in runs_before:
                continue
            for stats in instance.get_run_step_stats(run.run_id):
                if stats.start_time is None:
                    continue
                kind = "ingestion" if stats.step_key.startswith("ingest_") else stats.step_key
                steps[kind] = steps.get(kind, 0.0) + stats.end_time - stats.start_time
            for record in instance.all_logs(
                run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
            ):
                metadata = record.asset_materialization.metadata
                if "history_seconds" in metadata:
                    steps[HISTORY] = steps.get(HISTORY, 0.0) + metadata["history_seconds"].value
    for results in (Path(os.environ["BOUSSOLE_DATA_DIR"]) / "dbt").glob("*/*/run_results.json"):
        if results.stat().st_mtime >= started_at:
            steps[DBT_TESTS] = steps.get(DBT_TESTS, 0.0) + sum(
                node["execution_time"]
                for node in json.loads(results.read_text())["results"]
                if node["unique_id"].startswith("test.")
            )
    return seconds, completed.stdout, steps


def benchmark_whole_runs(landing: Path, next_day: Path) -> None:
    """Whole `boussole run` commands: a full refresh, the daily run of the second held-back
    extract day, then a run with nothing new."""
    from orchestration.assets.audit import ANOMALIES_KEY

    anomalies_step = ANOMALIES_KEY.to_python_identifier()
    full, _, full_steps = timed_run("--full-refresh")
    extract_date = land_held_back_day(landing, next_day, 1)
    daily, daily_output, daily_steps = timed_run()
    idle, idle_output, idle_steps = timed_run()
    if f"extract dates {extract_date} to {extract_date}" not in daily_output:
        raise RuntimeError(f"the daily run read other dates:\n{daily_output[-3000:]}")
    if "Nothing new" not in idle_output:
        raise RuntimeError(f"the run with nothing new did something:\n{idle_output[-3000:]}")
    kinds = ("ingestion", "dbt_models", SUITES_STEP, anomalies_step, "published_mart")
    for label, steps in (("full refresh", full_steps), ("daily run", daily_steps)):
        # A step renamed would otherwise count as start-up, silently.
        if missing := [kind for kind in kinds if kind not in steps]:
            raise RuntimeError(f"the {label} ran no step {missing}; its steps: {sorted(steps)}")
    parts = {"dbt_models": DBT_TESTS, "published_mart": HISTORY}
    runs = ((full, full_steps), (daily, daily_steps), (idle, idle_steps))
    rows = []
    for kind in kinds:
        rows.append((kind, *(steps.get(kind, 0.0) for _, steps in runs)))
        if kind in parts:
            rows.append((f"  of which {parts[kind]}", *(s.get(parts[kind], 0.0) for _, s in runs)))
    other = [total - sum(s for k, s in steps.items() if k in kinds) for total, steps in runs]
    rows.append(("start-up, Dagster, other", *other))
    rows.append(("whole boussole run", full, daily, idle))
    print("\n  whole `boussole run`, as a user times it (process start to exit, in seconds; the")
    print("  steps of its Dagster run, the rest is Python and Dagster start-up, the run's events")
    print(f"  and the summary; the daily run ingests extract {extract_date}, the last one nothing)")
    print_against_full_refresh("", 26, "daily", rows, ratio_digits=3)
    print(
        f"  {HISTORY}: {daily_steps.get(HISTORY, 0.0) / daily:.1%} of the daily run "
        "(recording the publication, comparing with the last one, naming causes)"
    )
    for label, total, steps in (
        ("full refresh", full, full_steps),
        ("daily run", daily, daily_steps),
    ):
        checks = sum(steps.get(kind, 0.0) for kind in (DBT_TESTS, SUITES_STEP, anomalies_step))
        print(
            f"  all checks (dbt tests' node time, the suites, the KPI anomalies): {checks:.2f} s, "
            f"{checks / total:.1%} of the {label}"
        )


def main() -> int:
    args = parse_args()
    landing = prepare_environment(args.workdir)
    sys.path.insert(0, str(PROJECT_ROOT))
    from boussole.settings import Settings

    settings = Settings.from_env()

    next_day = args.workdir / "next_day"
    if args.keep_landing and landing.exists() and next_day.exists():
        generation = 0.0
        # A previous run added the held-back days to the landing folder: take them out again.
        for day_folder in next_day.glob("*/*"):
            shutil.rmtree(landing / day_folder.parent.name / day_folder.name, ignore_errors=True)
    else:
        shutil.rmtree(landing, ignore_errors=True)
        shutil.rmtree(next_day, ignore_errors=True)
        generation = generate_landing(landing, next_day, args)
    floor_seconds, web_events = plain_scan_seconds(landing, args.workdir)
    total, stages, run_id = run_pipeline(settings, args.only_ingestion)

    import duckdb

    conn = duckdb.connect(str(settings.build_warehouse_path), read_only=True)
    raw_rows = conn.execute(
        "select sum(rows_loaded) from ingestion.load_manifest where status = 'loaded'"
    ).fetchone()[0]
    sessions = (
        "not built"
        if args.only_ingestion
        else f"{conn.execute('select count(*) from marts.fct_web_sessions').fetchone()[0]:,}"
    )
    conn.close()

    print(f"\nBoussole end-to-end benchmark (run {run_id})")
    print(f"  web events: {web_events:,}   all raw records: {raw_rows:,}   sessions: {sessions}")
    print(f"  sample generation: {generation:8.2f} s (not part of the pipeline)")
    print(f"  {'stage':<28}{'seconds':>10}{'share':>9}")
    for stage, seconds in stages.items():
        print(f"  {stage:<28}{seconds:>10.2f}{seconds / total:>9.1%}")
    print(f"  {'total (through Dagster)':<28}{total:>10.2f}")
    ingest_web = stages.get("ingest_web", float("nan"))
    print(f"\n  end-to-end throughput: {raw_rows / total:,.0f} raw records/s")
    print(f"  web ingestion: {web_events / ingest_web:,.0f} events/s")
    print(
        f"  plain DuckDB load of the same files: {floor_seconds:.2f} s "
        f"({web_events / floor_seconds:,.0f} events/s)"
    )
    print(f"  web ingestion / plain load ratio: {ingest_web / floor_seconds:.2f}x")
    if not args.only_ingestion:
        benchmark_layers(settings, landing, next_day)
        benchmark_whole_runs(landing, next_day)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end benchmark: generate sample extracts at a chosen scale, run the whole pipeline
through Dagster (as `boussole run` does), and print the time of each stage, rows per second,
and the ingestion time against a plain DuckDB load of the same files, measured in one run.

    .venv/bin/python benchmarks/pipeline_benchmark.py --web-events 1000000 --days 30

Everything is written under --workdir (default benchmarks/output/, git-ignored), with its
own Dagster instance; the project's own data and run history are not touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / "benchmarks" / "output")
    parser.add_argument(
        "--keep-landing",
        action="store_true",
        help="reuse the landing folder of a previous run with the same scale",
    )
    parser.add_argument(
        "--only-ingestion",
        action="store_true",
        help="materialise the ingestion assets only (no dbt, checks or publication)",
    )
    return parser.parse_args()


def prepare_environment(workdir: Path) -> tuple[Path, Path]:
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
    return landing, data


def generate_landing(landing: Path, args: argparse.Namespace) -> float:
    from boussole.sample_data import SampleScale, generate

    start = date(2026, 1, 1)
    end = start + timedelta(days=args.days - 1)
    scale = SampleScale(web_events_per_day=max(1, args.web_events // args.days))
    began = time.perf_counter()
    generate(landing, seed=args.seed, start=start, end=end, scale=scale)
    return time.perf_counter() - began


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


def run_pipeline(only_ingestion: bool) -> tuple[float, dict[str, float], str]:
    from boussole.cli import _dagster_instance, _partition_range
    from boussole.settings import get_settings

    settings = get_settings()
    began = time.perf_counter()
    instance = _dagster_instance()
    from orchestration.automation import partition_range_tags
    from orchestration.definitions import defs

    first, last = _partition_range(argparse.Namespace(start=None, end=None), settings)
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


def main() -> int:
    args = parse_args()
    landing, data = prepare_environment(args.workdir)
    sys.path.insert(0, str(PROJECT_ROOT))

    if args.keep_landing and landing.exists():
        generation = 0.0
    else:
        shutil.rmtree(landing, ignore_errors=True)
        generation = generate_landing(landing, args)
    floor_seconds, web_events = plain_scan_seconds(landing, args.workdir)
    total, stages, run_id = run_pipeline(args.only_ingestion)

    import duckdb

    conn = duckdb.connect(str(data / "build" / "warehouse.duckdb"), read_only=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

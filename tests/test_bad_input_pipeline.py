"""Bad input landed beside good records: the gate is complete. Every generated bad value in
every field of every object is quarantined, or loads and then builds, passes every dbt test
and Great Expectations suite, and publishes; every landing mistake is accounted for. The
pipeline's own loader, dbt build, suites and publication run it, as a run does, without
Dagster's fixed cost (what `boussole run` prints of it is tested in
tests/test_pipeline_end_to_end.py)."""

import json
import shutil
from datetime import date

import duckdb
import pytest

from boussole.dbt_manifest import published_kpi_ids
from boussole.ingestion.contracts import (
    SOURCES,
    PlausibleDates,
    extract_dates,
    landed_files,
    survey_landing,
)
from boussole.ingestion.loader import (
    ingestion_report,
    latest_extract_date,
    load_files,
    record_ignored,
)
from boussole.publication import publish_marts
from boussole.sample_data import SampleScale, generate
from data_quality.runner import SuiteRunner, load_suites
from tests.bad_input import FuzzedRecord, write_fuzz
from tests.conftest import FIXTURES, run_dbt

FIRST_DAY, BAD_DAY = date(2026, 1, 1), date(2026, 1, 3)
PII_KEY = "test-key-for-boussole-tests"


def land_hand_made_mistakes(landing):
    """One of each landing mistake, beside the fuzz files of BAD_DAY."""
    day = BAD_DAY.isoformat()
    (landing / "hubspot" / day).mkdir(parents=True)  # an unknown source
    (landing / "crm" / "2026-02-30").mkdir()  # not a calendar date
    (landing / "crm" / day / "deals_extra.jsonl").mkdir()  # a folder named like a file
    (landing / "crm" / day / "leads.jsonl").write_text('{"id": "1"}\n')  # an unknown object
    outside = landing.parent / "outside.jsonl"
    outside.write_text(json.dumps({"id": 999, "status": "open", "created_at": day}) + "\n")
    (landing / "support" / day / "tickets_linked.jsonl").symlink_to(outside)
    (landing / "support" / day / "users_1.jsonl.gz").write_bytes(b"")  # corrupt gzip


@pytest.fixture(scope="module")
def bad_input_build(tmp_path_factory):
    """Two days of generated extracts, then a day of fuzz files and landing mistakes beside
    the generated ones: loaded, built (dbt build: models and data tests), checked (every
    suite) and published. Returns the root folder, the fuzzed records, the ingestion report,
    the dbt build and the suites' outcomes."""
    root = tmp_path_factory.mktemp("bad_input")
    landing, warehouse = root / "landing", root / "build" / "warehouse.duckdb"
    generate(
        landing, seed=11, start=FIRST_DAY, end=BAD_DAY, scale=SampleScale(web_events_per_day=60)
    )
    fuzzed = write_fuzz(landing, FIRST_DAY, BAD_DAY)
    land_hand_made_mistakes(landing)
    warehouse.parent.mkdir()
    started = duckdb.connect().execute("select now()").fetchone()[0]
    with duckdb.connect(str(warehouse)) as conn:
        for source in SOURCES:
            files = [
                f for day in extract_dates(landing) for f in landed_files(landing, source, day)[0]
            ]
            load_files(conn, files, landing)
        record_ignored(conn, survey_landing(landing), list(SOURCES))
        report = ingestion_report(conn, started, limit=100)
        as_of = latest_extract_date(conn)
    built = run_dbt(
        "build",
        *("--exclude", "resource_type:unit_test"),
        warehouse=warehouse,
        target=root / "target",
        pii_key=PII_KEY,
        as_of_date=as_of,
    )
    runner = SuiteRunner()
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        outcomes = [
            runner.run(conn, suite, {"kpi_ids": published_kpi_ids()}) for suite in load_suites()
        ]
    return root, fuzzed, report, built, outcomes


def test_bad_input_builds_passes_every_test_and_check_and_publishes(bad_input_build):
    root, _, _, built, outcomes = bad_input_build
    assert built.returncode == 0, built.stdout[-5000:]
    assert "ERROR=0" in built.stdout and "SKIP=0" in built.stdout
    # Nothing refuses publication. What the fuzz lets through the contract but is absurd
    # (epoch numbers as deal amounts, sessions stretched by fuzzed timestamps) lies beyond
    # the far fences: warnings, which publish and flag the values.
    assert [(o.suite, o.summary()) for o in outcomes if o.blocking_failures] == []
    assert {o.suite for o in outcomes if not o.passed} <= {"fct_deals", "fct_web_sessions"}
    assert len(outcomes) == len(load_suites()) > 0
    published = publish_marts(root / "build" / "warehouse.duckdb", root / "published.duckdb")
    assert published.path.exists()


def test_every_landing_mistake_is_reported(bad_input_build):
    root, _, report, _, _ = bad_input_build
    day = BAD_DAY.isoformat()
    for line in (
        "hubspot: ignored, not a source folder",
        "crm/2026-02-30: ignored, not an extract date folder",
        f"crm/{day}/deals_extra.jsonl: ignored, a folder where files are expected",
        f"crm/{day}/leads.jsonl: ignored, unknown object",
        f"support/{day}/tickets_linked.jsonl: ignored, a symbolic link that leaves",
        f"support/{day}/users_1.jsonl.gz: failed, the file is empty",
        f"crm/{day}/deals_fuzz.jsonl: ",
    ):
        assert any(entry.startswith(line) for entry in report), line
    with duckdb.connect(str(root / "build" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute(
            "select count(*) from raw_support.tickets where record ->> '$.id' = '999'"
        ).fetchone() == (0,)


def test_every_fuzzed_record_is_quarantined_or_loaded_never_both_nor_lost(bad_input_build):
    root, fuzzed, _, _, _ = bad_input_build
    by_file: dict[str, list[FuzzedRecord]] = {}
    for record in fuzzed:
        by_file.setdefault(record.landing_object.name, []).append(record)
    with duckdb.connect(str(root / "build" / "warehouse.duckdb"), read_only=True) as c:
        for name, records in by_file.items():
            landing_object = records[0].landing_object
            path = next(
                landed.path
                for landed in landed_files(root / "landing", landing_object.source, BAD_DAY)[0]
                if landed.path.name.startswith(f"{name}_fuzz.")
            )
            relative = path.relative_to(root / "landing").as_posix()
            loaded = {
                n
                for (n,) in c.execute(
                    f"select _record_number from {landing_object.raw_table} where _source_file = ?",
                    [relative],
                ).fetchall()
            }
            quarantined = {
                n
                for (n,) in c.execute(
                    "select record_number from ingestion.quarantine where file_path = ?",
                    [relative],
                ).fetchall()
            }
            numbers = {r.record_number for r in records}
            assert loaded | quarantined == numbers and not loaded & quarantined, name
            # Values no staging type or plausible date can hold never pass, in whatever
            # field a rule of that kind checks.
            for record in records:
                rule = next((r for r in landing_object.rules if r.path == record.path), None)
                if rule is None:
                    continue
                refused = {
                    "integer": ("abc", 6.4, "6.4", 1e30, 99999999999999999999, "NaN"),
                    "number": ("abc", "NaN", "Infinity", "-Infinity"),
                    "timestamp": ("infinity", "epoch", 1767225600, "2026-02-30"),
                    "epoch_us": (1767225600, 1767225600000, "abc"),
                    "date": ("2026-02-30", "1970-01-01", "infinity"),
                }.get(rule.kind, ())
                if record.value in refused or (rule.required and record.value is None):
                    assert record.record_number in quarantined, (name, record.path, record.value)


def test_a_web_file_delivered_again_leaves_no_staged_event_of_its_first_delivery(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURES / "web_incremental", landing)
    warehouse = tmp_path / "warehouse.duckdb"
    day = min(p.name for p in (landing / "web").iterdir())
    (events,) = (landing / "web" / day).iterdir()
    lines = [line for line in events.read_text().splitlines() if line.strip()]

    def load_and_stage():
        with duckdb.connect(str(warehouse)) as conn:
            files = landed_files(landing, "web", date.fromisoformat(day))[0]
            load_files(conn, files, landing, PlausibleDates(days_ahead=5))
            as_of = latest_extract_date(conn)
        built = run_dbt(
            "run",
            "--select",
            "stg_web__events",
            warehouse=warehouse,
            target=tmp_path / "target",
            pii_key=PII_KEY,
            as_of_date=as_of,
        )
        assert built.returncode == 0, built.stdout[-3000:]
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            return conn.execute(
                "select user_pseudo_id, event_timestamp_us, event_name "
                "from staging.stg_web__events order by all"
            ).fetchall()

    first = load_and_stage()
    assert len(first) == len(lines)

    def identity(line):
        event = json.loads(line)
        return event["user_pseudo_id"], event["event_timestamp"], event["event_name"]

    events.write_text("\n".join(lines[1:]) + "\n")
    second = load_and_stage()
    assert second == sorted(identity(line) for line in lines[1:])
    assert identity(lines[0]) in first and identity(lines[0]) not in second

"""Bad input landed beside good records: the gate is complete (every generated bad value in
every field of every object is quarantined or builds, tests, checks and publishes cleanly),
and a run through Dagster with every kind of bad input publishes and says what it set aside."""

import json
import shutil
from datetime import date

import duckdb
import pytest

from boussole.ingestion.contracts import PlausibleDates, landed_files
from boussole.ingestion.loader import latest_extract_date, load_files
from boussole.sample_data import SampleScale, generate
from tests.bad_input import FuzzedRecord, write_fuzz
from tests.conftest import FIXTURES, make_workspace, run_dbt

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
def bad_input_run(tmp_path_factory):
    """Two days of generated extracts, then a day of fuzz files and landing mistakes, all run
    through Dagster once."""
    workspace = make_workspace(tmp_path_factory.mktemp("bad_input"))
    shutil.rmtree(workspace.landing)
    generate(
        workspace.landing,
        seed=11,
        start=FIRST_DAY,
        end=BAD_DAY,
        scale=SampleScale(web_events_per_day=60),
    )
    # The generated BAD_DAY extracts stay: good records beside the bad ones.
    fuzzed = write_fuzz(workspace.landing, FIRST_DAY, BAD_DAY)
    land_hand_made_mistakes(workspace.landing)
    result = workspace.boussole("run")
    return workspace, result, fuzzed


def test_a_run_with_every_kind_of_bad_input_publishes(bad_input_run):
    workspace, result, _ = bad_input_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert workspace.published.exists()
    assert "Published, with warnings" in result.stdout
    summary = result.stdout[result.stdout.index("Ingestion set aside") :]
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
        assert f"  - {line}" in summary, line
    with duckdb.connect(str(workspace.data / "build" / "warehouse.duckdb"), read_only=True) as c:
        assert c.execute(
            "select count(*) from raw_support.tickets where record ->> '$.id' = '999'"
        ).fetchone() == (0,)


def test_every_fuzzed_record_is_quarantined_or_loaded_never_both_nor_lost(bad_input_run):
    workspace, _, fuzzed = bad_input_run
    by_file: dict[str, list[FuzzedRecord]] = {}
    for record in fuzzed:
        by_file.setdefault(record.landing_object.name, []).append(record)
    with duckdb.connect(str(workspace.data / "build" / "warehouse.duckdb"), read_only=True) as c:
        for name, records in by_file.items():
            landing_object = records[0].landing_object
            path = next(
                landed.path
                for landed in landed_files(workspace.landing, landing_object.source, BAD_DAY)[0]
                if landed.path.name.startswith(f"{name}_fuzz.")
            )
            relative = path.relative_to(workspace.landing).as_posix()
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

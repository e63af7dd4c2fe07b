"""What a run audits and whether it has anything to do (boussole/audit_scope.py), and which
extract dates it reads (boussole/ingestion/loader.py extract_dates_to_read): decisions made
from small files and tables, tested without dbt or Dagster."""

import os
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from boussole import audit_scope
from boussole.audit_scope import (
    ALL_ROWS,
    THIS_RUN,
    build_digest,
    current_publication,
    forget_publication,
    plan_test_scope,
    record_build,
    record_project_digest,
    record_publication,
)
from boussole.dbt_reuse import Reuse
from boussole.ingestion.contracts import landed_files
from boussole.ingestion.loader import extract_dates_to_read, load_files
from boussole.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REUSING = Reuse(["--state", "x", "--exclude", "y"], "")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A stand-in for the dbt project and suites, whose files a test may change."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "models" / "a.sql").write_text("select 1 as a\n")
    monkeypatch.setattr(audit_scope, "PROJECT_ROOT", root)
    monkeypatch.setattr(audit_scope, "_PROJECT_INPUTS", (root / "models",))
    return root


def test_a_build_tests_its_own_rows_only_after_a_build_of_the_same_project(project, tmp_path):
    state = tmp_path / "dbt_state"
    state.mkdir()
    # No earlier build, or one that cannot be reused (full refresh, selection, settings).
    assert plan_test_scope(None, REUSING).value == ALL_ROWS
    scope = plan_test_scope(state, Reuse([], "full refresh"))
    assert (scope.value, scope.reason) == (ALL_ROWS, "full refresh")
    # The last build recorded no project digest (a build before this was recorded).
    assert plan_test_scope(state, REUSING).value == ALL_ROWS

    record_project_digest(state)
    assert plan_test_scope(state, REUSING).value == THIS_RUN
    assert plan_test_scope(state, REUSING).env == {"BOUSSOLE_TEST_SCOPE": THIS_RUN}

    # A changed file of the project (a new test, a changed model or suite): every row.
    (project / "models" / "a.sql").write_text("select 2 as a\n")
    assert plan_test_scope(state, REUSING).value == ALL_ROWS
    record_project_digest(state)
    # Python's compiled files are not the project.
    (project / "models" / "__pycache__").mkdir()
    (project / "models" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    assert plan_test_scope(state, REUSING).value == THIS_RUN
    (project / "models" / "b.yml").write_text("version: 2\n")
    assert plan_test_scope(state, REUSING).value == ALL_ROWS


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"BOUSSOLE_DATA_DIR": str(tmp_path / "data")})


def publish(settings: Settings, content: bytes = b"mart") -> None:
    settings.published_mart_path.parent.mkdir(parents=True, exist_ok=True)
    settings.published_mart_path.write_bytes(content)


def test_nothing_to_do_only_when_the_served_mart_is_the_build_of_the_same_inputs(settings):
    settings.dbt_state_dir.mkdir(parents=True)
    assert current_publication(settings, "d1") is None
    record_build(settings.dbt_state_dir, "d1", "run-1")
    publish(settings)
    assert record_publication(settings, "run-1")
    assert current_publication(settings, "d1") == "run-1"
    # Other inputs (a file loaded, another project or settings): a build is due.
    assert current_publication(settings, "d2") is None

    # The served file is no longer the one published (replaced, or opened for writing).
    os.utime(settings.published_mart_path, ns=(1, 1))
    assert current_publication(settings, "d1") is None
    publish(settings)
    assert record_publication(settings, "run-1")
    assert current_publication(settings, "d1") == "run-1"
    # A copy of the data folder that keeps sizes and times (a backup restored) is the same.
    copy = Settings.from_env({"BOUSSOLE_DATA_DIR": str(settings.data_dir) + "_copy"})
    shutil.copytree(settings.data_dir, copy.data_dir)
    assert current_publication(copy, "d1") == "run-1"

    # A build that started claims (removes) the state of the last one: until it succeeds, the
    # warehouse may hold anything.
    shutil.rmtree(settings.dbt_state_dir)
    assert current_publication(settings, "d1") is None
    settings.dbt_state_dir.mkdir()
    record_build(settings.dbt_state_dir, "d1", "run-2")
    # run-2 built the same inputs but did not publish (its audit failed, or it was killed).
    assert current_publication(settings, "d1") is None
    # A publication in progress forgets the last one; it records only a build of its run.
    forget_publication(settings)
    publish(settings, b"mart of run 3")
    assert not record_publication(settings, "run-3")
    assert current_publication(settings, "d1") is None


def test_the_build_digest_follows_the_files_loaded(tmp_path):
    landing = FIXTURES / "landing_small"
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    empty = build_digest(conn, "settings")
    load_files(conn, landed_files(landing, "support", date(2026, 1, 5))[0], landing)
    loaded = build_digest(conn, "settings")
    assert loaded != empty
    # Reading the same files again changes nothing; other settings change it.
    load_files(conn, landed_files(landing, "support", date(2026, 1, 5))[0], landing)
    assert build_digest(conn, "settings") == loaded
    assert build_digest(conn, "other settings") != loaded
    conn.close()


def test_a_run_reads_the_extract_dates_with_new_or_changed_files(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    # A warehouse that does not record what it read: every date.
    assert extract_dates_to_read(conn, landing) is None
    crm_days = sorted(p.name for p in (landing / "crm").iterdir())
    all_days = sorted({p.name for p in landing.glob("*/*")})
    for day in crm_days:
        load_files(conn, landed_files(landing, "crm", date.fromisoformat(day))[0], landing)
    to_read = {d.isoformat() for d in extract_dates_to_read(conn, landing)}
    # The dates of the other sources: their files were not read.
    assert to_read == {
        p.parent.name for p in landing.glob("*/*/*") if p.parent.parent.name != "crm"
    }
    for source in ("spend", "support", "web"):
        for day in all_days:
            load_files(conn, landed_files(landing, source, date.fromisoformat(day))[0], landing)
    # Every file read, those that could not be read (the fixture's empty one) too.
    assert extract_dates_to_read(conn, landing) == []

    # A file delivered again (same content, another time) or changed; a new one.
    deals = next((landing / "crm" / crm_days[0]).glob("deals*"))
    os.utime(deals, ns=(deals.stat().st_atime_ns, deals.stat().st_mtime_ns + 1))
    new_day = landing / "support" / "2026-03-01"
    new_day.mkdir()
    shutil.copy(next((landing / "support").glob("*/tickets*")), new_day / "tickets.jsonl")
    # A file of no known object is not read: its date does not count.
    (landing / "web" / "2026-03-02").mkdir()
    (landing / "web" / "2026-03-02" / "notes.txt").write_text("not an extract")
    assert extract_dates_to_read(conn, landing) == [
        date.fromisoformat(crm_days[0]),
        date(2026, 3, 1),
    ]
    conn.close()

"""What a run must audit, and whether it has anything to do at all.

The data tests of the incremental models check the rows the build wrote (dbt_project/macros/
test_scope.sql) when every other row passed the same tests before: the last build of the whole
project succeeded (its state is recorded, boussole/dbt_reuse.py), with the same settings and the
same project files (dbt project, Great Expectations suites) and versions of dbt. Otherwise (a
full refresh, the first build, the build after a failed or partial one, a changed project) every
row is tested.

A run with nothing new leaves the published mart as it is: when the build warehouse holds the
build that was published (the last successful build of the whole project, recorded with a digest
of its inputs: the files loaded, the project, the settings) and the published file is the one
that publication wrote, building, auditing and publishing again would give the same mart. The
audit that guards it already happened, on what is published.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb

from boussole.dbt_reuse import Reuse
from boussole.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings

# Read by dbt_project/macros/test_scope.sql when a test runs.
TEST_SCOPE_VARIABLE = "BOUSSOLE_TEST_SCOPE"
THIS_RUN = "this_run"
ALL_ROWS = "all"

# What defines the build and its audit, besides the settings: the dbt project, the suites and
# the code that runs them.
_PROJECT_INPUTS = (
    DBT_PROJECT_DIR / "models",
    DBT_PROJECT_DIR / "macros",
    DBT_PROJECT_DIR / "tests",
    DBT_PROJECT_DIR / "seeds",
    DBT_PROJECT_DIR / "dbt_project.yml",
    DBT_PROJECT_DIR / "profiles.yml",
    PROJECT_ROOT / "data_quality",
    PROJECT_ROOT / "orchestration" / "checks",
)
_PACKAGES = ("dbt-core", "dbt-duckdb", "great-expectations")
# Kept in the dbt state folder of the last successful build of the whole project.
PROJECT_DIGEST = "project.sha256"
BUILD_RECORD = "build.json"
# Kept beside the build warehouse by the publication that used that build.
PUBLICATION_RECORD = "published.json"


def project_digest() -> str:
    """Every file of the dbt project, of the suites and of the code that runs them (path and
    content; compiled Python left out), and the versions of dbt, its adapter and Great
    Expectations, as one digest."""
    digest = hashlib.sha256()
    for package in _PACKAGES:
        digest.update(f"{package}=={version(package)}\n".encode())
    for root in _PROJECT_INPUTS:
        files = sorted(root.rglob("*")) if root.is_dir() else [root] if root.exists() else []
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(f"{path.relative_to(PROJECT_ROOT).as_posix()}\n".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# --- the scope of the data tests -------------------------------------------------------------


@dataclass(frozen=True)
class TestScope:
    """BOUSSOLE_TEST_SCOPE for a dbt build, and why every row is tested when it is not
    this_run."""

    value: str
    reason: str

    __test__ = False  # not a pytest class

    @property
    def env(self) -> dict[str, str]:
        return {TEST_SCOPE_VARIABLE: self.value}

    @property
    def dbt_args(self) -> list[str]:
        """A build of this run's rows leaves the unit tests out: they check the project's logic
        on fixed rows, and passed in the last build, of the same project files and dbt."""
        return ["--exclude-resource-type", "unit_test"] if self.value == THIS_RUN else []


def plan_test_scope(previous_build: Path | None, reuse: Reuse) -> TestScope:
    """The rows of this build only, when the last build of the whole project succeeded with the
    same settings (what reusing its views requires, `reuse`: never on a full refresh or for a
    selection of models) and the same project files. A full refresh tests every row whatever
    this says (the macro reads dbt's --full-refresh flag)."""
    if not reuse.dbt_args or previous_build is None:
        return TestScope(ALL_ROWS, reuse.reason or "no earlier successful build is recorded")
    recorded = previous_build / PROJECT_DIGEST
    if not recorded.exists() or recorded.read_text().strip() != project_digest():
        return TestScope(ALL_ROWS, "the dbt project or the suites changed since the last build")
    return TestScope(THIS_RUN, "")


def record_project_digest(state_dir: Path) -> None:
    """After a successful build of the whole project (its state just recorded): the project
    files it was built and tested with."""
    (state_dir / PROJECT_DIGEST).write_text(project_digest() + "\n")


# --- a run with nothing new -------------------------------------------------------------------


def build_digest(conn: duckdb.DuckDBPyConnection, settings_digest: str) -> str:
    """What a build of the warehouse `conn` reads depends on: the files loaded (by checksum and
    extract date, which also gives the as-of date), the project and the settings."""
    digest = hashlib.sha256(f"{settings_digest}\n{project_digest()}\n".encode())
    loaded = conn.execute(
        "select count(*) from duckdb_tables() "
        "where schema_name = 'ingestion' and table_name = 'load_manifest'"
    ).fetchone()[0]
    files = (
        conn.execute(
            "select file_sha256, extract_date::varchar from ingestion.load_manifest "
            "where status = 'loaded' order by all"
        ).fetchall()
        if loaded
        else []
    )
    for sha256, extract_date in files:
        digest.update(f"{sha256} {extract_date}\n".encode())
    return digest.hexdigest()


def current_build_digest(settings: Settings) -> str:
    """build_digest of the build warehouse as it is, with the settings a build would use."""
    from boussole.dbt_invocation import DbtInvocation
    from boussole.dbt_reuse import settings_digest

    with duckdb.connect(str(settings.build_warehouse_path), read_only=True) as conn:
        invocation = DbtInvocation.as_of_warehouse(settings, conn)
        return build_digest(conn, settings_digest(invocation.vars(), invocation.env()))


def record_build(state_dir: Path, digest: str, run_id: str) -> None:
    """After a successful build of the whole project by the pipeline (its state recorded):
    what it was built from (build_digest), by which run."""
    _write_json(state_dir / BUILD_RECORD, {"digest": digest, "run_id": run_id})


def recorded_build(state_dir: Path) -> Mapping[str, str] | None:
    return _read_json(state_dir / BUILD_RECORD)


def _file_identity(path: Path) -> list[int]:
    """Size and modification time: another file put in its place, or the file opened for
    writing, has others (a copy that keeps them, such as a backup restored, is the same)."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def forget_publication(settings: Settings) -> None:
    """Before the served mart is replaced: until the new one is recorded, none is current."""
    (settings.build_warehouse_path.parent / PUBLICATION_RECORD).unlink(missing_ok=True)


def record_publication(settings: Settings, run_id: str) -> bool:
    """After `run_id` published the mart: the build it published, if that run built it (the
    state of its build is recorded). Returns whether it was recorded."""
    build = recorded_build(settings.dbt_state_dir)
    if build is None or build.get("run_id") != run_id:
        return False
    _write_json(
        settings.build_warehouse_path.parent / PUBLICATION_RECORD,
        {
            "digest": build["digest"],
            "run_id": run_id,
            "published": _file_identity(settings.published_mart_path),
        },
    )
    return True


def current_publication(settings: Settings, digest: str) -> str | None:
    """The run that built, audited and published what a build with `digest` would give, if the
    build warehouse still holds that build and the served mart is the file it published."""
    published = _read_json(settings.build_warehouse_path.parent / PUBLICATION_RECORD)
    build = recorded_build(settings.dbt_state_dir)
    if published is None or build is None or not settings.published_mart_path.exists():
        return None
    if published.get("digest") != digest or build.get("digest") != digest:
        return None
    if build.get("run_id") != published.get("run_id"):
        return None
    if published.get("published") != _file_identity(settings.published_mart_path):
        return None
    return published["run_id"]


def _write_json(path: Path, document: Mapping) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)


def _read_json(path: Path) -> Mapping | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None

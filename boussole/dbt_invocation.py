"""The one owner of a dbt invocation: every dbt process of the project (the Dagster dbt step,
`boussole postgres`, the manifest Dagster reads, the benchmark, the tests) gets its command
line, its environment and its artifact folder here.

An invocation's artifacts (manifest, run results, compiled SQL, dbt.log) go to a folder of its
own under <BOUSSOLE_DATA_DIR>/dbt/<lane>/, where the last KEPT_RUNS folders are kept. dbt parses
the whole project again (about 10 s) unless its target folder holds the partial_parse.msgpack
of a parse made with the same profile and the same --vars: each new folder starts with the
newest one of its lane, and a lane groups the invocations that share them. The as-of date,
which changes with each day's extract, is no var but an environment variable that the models
read only when they run (AS_OF_DATE_VARIABLE), so a new one re-parses nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from boussole.audit_scope import (
    TEST_SCOPE_VARIABLE,
    TestScope,
    plan_test_scope,
    record_project_digest,
)
from boussole.dbt_reuse import (
    AS_OF_DATE_VARIABLE,
    Reuse,
    claimed_state,
    plan_reuse,
    record_state,
    settings_digest,
)
from boussole.ingestion.loader import latest_extract_date
from boussole.kpi_catalogue import KpiCatalogue, kpi_fact_models
from boussole.settings import DBT_PROJECT_DIR, Settings

# This environment's dbt, whether or not it is on PATH (it is not under `dagster dev`).
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
PARTIAL_PARSE = "partial_parse.msgpack"
KEPT_RUNS = 3

# The PostgreSQL connection: parameter -> (variable the dbt profile reads, default).
POSTGRES_VARIABLES = {
    "host": ("BOUSSOLE_PG_HOST", "localhost"),
    "port": ("BOUSSOLE_PG_PORT", "5432"),
    "user": ("BOUSSOLE_PG_USER", "boussole"),
    "password": ("BOUSSOLE_PG_PASSWORD", ""),
    "dbname": ("BOUSSOLE_PG_DATABASE", "boussole"),
}


def postgres_connection(environ: Mapping[str, str]) -> dict[str, str]:
    """The PostgreSQL connection parameters that `environ` sets, with their defaults."""
    return {
        key: environ.get(name) or default for key, (name, default) in POSTGRES_VARIABLES.items()
    }


@dataclass(frozen=True)
class DbtInvocation:
    """dbt on the project with the pipeline's settings, on a target of dbt_project/profiles.yml
    (duckdb or postgres), with the settings' vars and `dbt_vars`."""

    settings: Settings
    target: str = "duckdb"
    dbt_vars: Mapping[str, object] = field(default_factory=dict)
    # The day the figures are as of (ISO); unset: today in the reporting time zone.
    as_of_date: str | None = None
    # The connection of the postgres target (postgres_connection).
    postgres: Mapping[str, str] = field(default_factory=dict)
    # A DuckDB file other than the settings' build warehouse (tests build fixtures in theirs).
    warehouse: Path | None = None
    # The rows the data tests of incremental models check (boussole/audit_scope.py); unset:
    # every row.
    test_scope: str | None = None
    # A copy of the dbt project (tests of a changed project).
    project_dir: Path = DBT_PROJECT_DIR

    def __post_init__(self) -> None:
        if "as_of_date" in self.dbt_vars:
            raise ValueError("the as-of date goes in DbtInvocation.as_of_date, not in dbt_vars")

    @classmethod
    def as_of_warehouse(
        cls, settings: Settings, conn: duckdb.DuckDBPyConnection, **fields
    ) -> DbtInvocation:
        """Figures as of the latest extract date loaded in the build warehouse `conn` reads."""
        return cls(settings, as_of_date=latest_extract_date(conn), **fields)

    def vars(self) -> dict[str, object]:
        return {
            "reporting_tz": self.settings.reporting_tz,
            "reporting_currency": self.settings.reporting_currency,
            "kpi_fact_models": kpi_fact_models(
                KpiCatalogue.from_project_files(self.project_dir), self.project_dir
            ),
            **self.dbt_vars,
        }

    def sqlfluff_config(self) -> str:
        """An extra sqlfluff config file (`sqlfluff lint --config`) whose dbt templater passes
        dbt the vars dbt_project.yml cannot hold (kpi_fact_models, as JSON text)."""
        fact_models = json.dumps(self.vars()["kpi_fact_models"])
        return f"[sqlfluff:templater:dbt:context]\nkpi_fact_models = {fact_models}\n"

    def env(self) -> dict[str, str]:
        """The variables the profile and the models read, on top of the caller's environment."""
        pii_key = self.settings.pii_key
        env = {
            "BOUSSOLE_WAREHOUSE_PATH": str(self.warehouse or self.settings.build_warehouse_path),
            # Read by the DuckDB sessions' plugin (boussole/dbt_pii_session.py), never by the
            # models; the secret copy makes dbt scrub the key from anything it would log.
            "BOUSSOLE_PII_KEY": pii_key,
            "DBT_ENV_SECRET_BOUSSOLE_PII_KEY": pii_key,
        }
        if self.target == "postgres":
            env |= {name: self.postgres[key] for key, (name, _) in POSTGRES_VARIABLES.items()}
            # The profile reads the secret copy, which dbt scrubs from its logs.
            env["DBT_ENV_SECRET_BOUSSOLE_PG_PASSWORD"] = self.postgres["password"]
            # The models read the key from the session setting boussole.pii_key, which libpq
            # sends with each connection (PGOPTIONS: a backslash escapes spaces and itself).
            escaped = pii_key.replace("\\", "\\\\").replace(" ", "\\ ")
            options = [os.environ.get("PGOPTIONS"), f"-c boussole.pii_key={escaped}"]
            env["PGOPTIONS"] = " ".join(o for o in options if o)
        if self.test_scope:
            env[TEST_SCOPE_VARIABLE] = self.test_scope
        if self.as_of_date:
            env[AS_OF_DATE_VARIABLE] = self.as_of_date
        return env

    def args(self, *dbt_args: str) -> list[str]:
        """`dbt_args` (a dbt command and its options), then this invocation's options."""
        if "--vars" in dbt_args:
            raise ValueError("vars go in DbtInvocation.dbt_vars: dbt takes one --vars")
        return [
            *dbt_args,
            *("--vars", json.dumps(self.vars())),
            *("--target", self.target),
            *("--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir)),
        ]

    def command(self, *dbt_args: str, target_path: Path) -> list[str]:
        """The whole command line; artifacts and dbt.log go to `target_path`."""
        return [
            str(DBT_EXECUTABLE),
            *self.args(*dbt_args),
            *("--target-path", str(target_path), "--log-path", str(target_path)),
        ]

    def run(self, *dbt_args: str, target_path: Path, **kwargs) -> subprocess.CompletedProcess:
        """Runs dbt (subprocess.run, with `kwargs`)."""
        return subprocess.run(
            self.command(*dbt_args, target_path=target_path),
            env={**os.environ, **self.env()},
            **kwargs,
        )

    def follow(self, *dbt_args: str, target_path: Path) -> subprocess.Popen:
        """Starts dbt with its log on stdout as JSON events, one per line, for
        boussole/dbt_log.py to follow; dbt.log stays plain text."""
        process = subprocess.Popen(
            self.command(
                *dbt_args,
                "--log-format",
                "json",
                "--log-format-file",
                "debug",
                target_path=target_path,
            ),
            env={**os.environ, **self.env()},
            stdout=subprocess.PIPE,
            text=True,
        )
        _FOLLOWED.add(process)
        return process

    def new_target_path(self, lane: str | None = None) -> Path:
        """A new folder for the artifacts of one invocation, under <data>/dbt/<lane> (default:
        the target's name), holding the newest partial parse of the lane; the oldest folders
        beyond KEPT_RUNS are deleted."""
        lane_dir = self.settings.data_dir / "dbt" / (lane or self.target)
        lane_dir.mkdir(parents=True, exist_ok=True)
        # Named by the time they were made (then a random suffix): sorted, oldest first.
        earlier = sorted(lane_dir.iterdir())
        path = lane_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        parses = [p / PARTIAL_PARSE for p in earlier if (p / PARTIAL_PARSE).exists()]
        if parses:
            shutil.copyfile(parses[-1], path / PARTIAL_PARSE)
        for old in earlier[: max(0, len(earlier) - (KEPT_RUNS - 1))]:
            shutil.rmtree(old, ignore_errors=True)
        return path


# The dbt processes follow() started. A step that follows one stops it when it ends, but
# Dagster can stop a step between two of its events (an interrupt: Ctrl-C, Terminate in the
# UI), outside the step's code, which then ends only when Python collects it: until then dbt
# would keep building and holding the warehouse's lock.
_FOLLOWED: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()


def stop_unfinished_builds() -> None:
    """Stops the dbt processes this process followed that are still running (after a run, and
    when the process exits)."""
    for process in list(_FOLLOWED):
        if process.poll() is None:
            process.terminate()
            process.wait()


atexit.register(stop_unfinished_builds)


@dataclass(frozen=True)
class WarehouseBuild:
    """A dbt build of the DuckDB build warehouse as the pipeline runs it: figures as of the
    latest extract date loaded, and the views and reference models that did not change since
    the last build reused (boussole/dbt_reuse.py)."""

    invocation: DbtInvocation
    reuse: Reuse
    digest: str
    test_scope: TestScope

    @property
    def as_of_date(self) -> str | None:
        return self.invocation.as_of_date

    @property
    def dbt_args(self) -> list[str]:
        """What the build leaves out: the relations it reuses, and the unit tests when it tests
        the rows it writes."""
        return [*self.reuse.dbt_args, *self.test_scope.dbt_args]

    def run(self, *dbt_args: str, target_path: Path, **kwargs) -> subprocess.CompletedProcess:
        """dbt `dbt_args` (a command and its options) on this build (DbtInvocation.run)."""
        return self.invocation.run(*dbt_args, *self.dbt_args, target_path=target_path, **kwargs)

    def follow(self, *dbt_args: str, target_path: Path) -> subprocess.Popen:
        """dbt `dbt_args` on this build, followed (DbtInvocation.follow)."""
        return self.invocation.follow(*dbt_args, *self.dbt_args, target_path=target_path)

    def record(self, manifest: Path) -> None:
        """Keep the manifest of a successful build of every node: the next build compares
        with it."""
        record_state(self.invocation.settings.dbt_state_dir, manifest, self.digest)
        record_project_digest(self.invocation.settings.dbt_state_dir)


@contextmanager
def warehouse_build(settings: Settings, no_reuse: str | None = None) -> Iterator[WarehouseBuild]:
    """The build to run in the block; `no_reuse` says why nothing may be reused, if so. The
    state of the last build is claimed for the block: a build that fails or is interrupted
    leaves none, and the next one rebuilds everything."""
    with claimed_state(settings.dbt_state_dir) as previous_build:
        with duckdb.connect(str(settings.build_warehouse_path), read_only=True) as conn:
            invocation = DbtInvocation.as_of_warehouse(settings, conn)
            digest = settings_digest(invocation.vars(), invocation.env())
            reuse = Reuse([], no_reuse) if no_reuse else plan_reuse(previous_build, digest, conn)
        # The data tests of the incremental models check the rows this build writes when every
        # other row passed them in the last build (boussole/audit_scope.py).
        scope = plan_test_scope(previous_build, reuse)
        invocation = replace(invocation, test_scope=scope.value)
        yield WarehouseBuild(invocation, reuse, digest, scope)

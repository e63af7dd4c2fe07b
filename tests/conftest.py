"""Shared fixtures: an isolated Boussole environment (landing, data, Dagster instance)."""

import fcntl
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import duckdb
import pytest
import yaml

from boussole.dbt_invocation import DbtInvocation
from boussole.history import Recording
from boussole.ingestion.contracts import SOURCES, extract_dates, landed_files
from boussole.ingestion.loader import FileLoad, latest_extract_date, load_files
from boussole.publication import publish_marts
from boussole.settings import PII_KEY_VARIABLE, Settings
from tests.webhook import Webhook

PROJECT_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BOUSSOLE = Path(sys.executable).parent / "boussole"

# Settings a fixture needs: landing_small and kpi_web pack later activity (a deal won on
# 3 February, a session on 10 February, a rate for 9 January) into their first extract
# folders, further past their extract date than a real export ever is.
FIXTURE_SETTINGS = {
    "landing_small": {"BOUSSOLE_PLAUSIBLE_DAYS_AHEAD": "40"},
    "kpi_web": {"BOUSSOLE_PLAUSIBLE_DAYS_AHEAD": "5"},
}


@dataclass
class Workspace:
    landing: Path
    data: Path
    dagster_home: Path
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.settings,
            "BOUSSOLE_LANDING_DIR": str(self.landing),
            "BOUSSOLE_DATA_DIR": str(self.data),
            "DAGSTER_HOME": str(self.dagster_home),
            "BOUSSOLE_PII_KEY": "test-key-for-boussole-tests",
        }

    @property
    def published(self) -> Path:
        return self.data / "published" / "boussole.duckdb"

    def boussole(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BOUSSOLE), *args], env=self.env, capture_output=True, text=True, timeout=900
        )

    def run_logs(self) -> list[Path]:
        """The step output of each `boussole run` (dbt's log among it)."""
        return sorted((self.data / "logs").glob("*.log"))

    def python(self, *args: str) -> subprocess.CompletedProcess:
        """Python with `args` (a script, -c or -m), from the project root, in this workspace
        (the Dagster CLI, a script that runs the project's Definitions)."""
        return subprocess.run(
            [sys.executable, *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )


# Dagster writes thousands of events per run into its SQLite storage: on tmpfs, where fsync
# costs nothing, a run takes about 20 s less than on disk.
TMPFS = Path("/dev/shm")
# The folder of this test run that every worker shares (Dagster instances, shared runs): made
# by the process that starts the run (pytest-xdist's controller, whose environment its
# workers inherit) and deleted when the run ends.
SHARED_ROOT_VARIABLE = "BOUSSOLE_TEST_SHARED_ROOT"
_SHARED_ROOT = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    root = Path(tempfile.mkdtemp(prefix="boussole-tests-", dir=TMPFS if TMPFS.is_dir() else None))
    config.stash[_SHARED_ROOT] = root
    os.environ[SHARED_ROOT_VARIABLE] = str(root)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SHARED_ROOT in config.stash:
        shutil.rmtree(config.stash[_SHARED_ROOT], ignore_errors=True)


def shared_root() -> Path:
    return Path(os.environ[SHARED_ROOT_VARIABLE])


def built_once(name: str, build: Callable[[Path], T]) -> T:
    """What build(folder) returns, built by the first worker of the test run that asks for
    `name` in a folder of the shared one; the others wait for it and read it back."""
    kept = shared_root() / f"{name}.pickle"
    with (shared_root() / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not kept.exists():
            kept.write_bytes(pickle.dumps(build(shared_root() / name)))
        return pickle.loads(kept.read_bytes())


def make_workspace(root: Path, landing_fixture: str | None = None) -> Workspace:
    """A landing folder (copied from a fixture), a data folder and a Dagster instance that
    uses the project's dagster.yaml settings (its pool limit of 1 included), with its
    storage in the test run's shared folder (on tmpfs when the machine has one)."""
    dagster_home = Path(tempfile.mkdtemp(prefix="dagster_home-", dir=shared_root()))
    workspace = Workspace(
        root / "landing", root / "data", dagster_home, FIXTURE_SETTINGS.get(landing_fixture, {})
    )
    if landing_fixture:
        shutil.copytree(FIXTURES / landing_fixture, workspace.landing)
    else:
        workspace.landing.mkdir(parents=True)
    workspace.dagster_home.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    for storage_key in ("storage", "local_artifact_storage", "compute_logs"):
        config.pop(storage_key, None)
    (workspace.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return workspace


def copy_workspace(source: Workspace, root: Path) -> Workspace:
    """An independent copy of a workspace after its runs (landing, data, Dagster instance), so
    that a test can run on from a shared state without changing it for other tests."""
    dagster_home = Path(tempfile.mkdtemp(prefix="dagster_home-", dir=shared_root())) / "home"
    copy = Workspace(root / "landing", root / "data", dagster_home, source.settings)
    shutil.copytree(source.landing, copy.landing)
    # Not dbt's artifacts (tens of MB a run): the copy's other warehouse path makes its dbt
    # parse again anyway.
    shutil.copytree(
        source.data,
        copy.data,
        ignore=lambda folder, _: ["dbt"] if folder == str(source.data) else [],
    )
    shutil.copytree(source.dagster_home, copy.dagster_home)
    return copy


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path, "landing_small")


@pytest.fixture(scope="session")
def small_pipeline() -> tuple[Workspace, subprocess.CompletedProcess]:
    """One `boussole run` through Dagster on tests/fixtures/landing_small, built once per test
    run and shared by the tests that read its result (read only) or run on from a copy of it
    (copy_workspace)."""

    def build(root: Path) -> tuple[Workspace, subprocess.CompletedProcess]:
        workspace = make_workspace(root, "landing_small")
        result = workspace.boussole("run")
        assert result.returncode == 0, result.stdout + result.stderr
        return workspace, result

    return built_once("small_pipeline", build)


@dataclass
class SampleHistory:
    """Generated sample extracts built by a first run and then daily incremental runs through
    Dagster; `warehouses` keeps a copy of the build warehouse as it stood after some of them."""

    workspace: Workspace
    warehouses: dict[str, Path]


SAMPLE_FIRST_DAY, SAMPLE_LAST_DAY = "2026-01-01", "2026-01-16"
SAMPLE_FIRST_RUN_END = "2026-01-14"
# Two daily runs: the second is incremental on top of an incremental one.
SAMPLE_DAILY_RUNS = ("2026-01-15", "2026-01-16")


@pytest.fixture(scope="session")
def sample_history() -> SampleHistory:
    """Days 2026-01-01 to 01-14 in one run, then one run per day to 01-16, through Dagster;
    the warehouse is kept after the first run and after the first daily run. Built once per
    test run, shared by the KPI mart's invariants and the PostgreSQL build."""
    return built_once("sample_history", _build_sample_history)


def _build_sample_history(root: Path) -> SampleHistory:
    workspace = make_workspace(root)
    generated = workspace.boussole(
        *("generate", "--start", SAMPLE_FIRST_DAY, "--end", SAMPLE_LAST_DAY),
        *("--web-events-per-day", "300"),
    )
    assert generated.returncode == 0, generated.stderr
    warehouses = {}
    for first, last in (
        (SAMPLE_FIRST_DAY, SAMPLE_FIRST_RUN_END),
        *zip(SAMPLE_DAILY_RUNS, SAMPLE_DAILY_RUNS, strict=True),
    ):
        run = workspace.boussole("run", "--start", first, "--end", last)
        assert run.returncode == 0, run.stdout + run.stderr
        if len(warehouses) < 2:
            warehouses[last] = root / f"warehouse-{last}.duckdb"
            shutil.copy(workspace.data / "build" / "warehouse.duckdb", warehouses[last])
    return SampleHistory(workspace, warehouses)


@dataclass(frozen=True)
class TwoPublications:
    """The published mart of the landing_small run (`first`, as of 2026-02-02), and the mart of
    a second publication a day later (`second`) whose build differs in one value: January's
    company revenue, 1,000 more (RESTATED), a restatement, so its kpi_value_history holds both
    versions. `data` is the second's data folder (build warehouse, history, published mart)."""

    first: Path
    second: Path
    data: Path


RESTATED = {"kpi_id": "revenue", "grain": "month", "period_start": "2026-01-01"}


@pytest.fixture(scope="session")
def two_publications(small_pipeline) -> TwoPublications:
    """Built once per test run by the project's publication (no Dagster run: about a second)."""
    return built_once("two_publications", lambda root: _publish_again(small_pipeline[0], root))


def _publish_again(workspace: Workspace, root: Path) -> TwoPublications:
    data = root / "data"
    shutil.copytree(workspace.data, data, ignore=shutil.ignore_patterns("dbt", "logs"))
    first = root / "first.duckdb"
    shutil.copy(workspace.published, first)
    with duckdb.connect(str(first), read_only=True) as conn:
        first_published_at = conn.execute("select max(published_at) from publications").fetchone()
    build = data / "build" / "warehouse.duckdb"
    with duckdb.connect(str(build)) as conn:
        conn.execute(
            "update kpi.kpi_values set value = value + 1000 where kpi_id = $kpi_id "
            "and grain = $grain and period_start = $period_start and dimension = 'all'",
            RESTATED,
        )
    recording = Recording(
        data / "history" / "publications.duckdb",
        "second-publication",
        published_at=first_published_at[0] + timedelta(days=1),
    )
    second = publish_marts(build, data / "published" / "boussole.duckdb", recording, checks=[])
    assert second.restatements == 1
    return TwoPublications(first, second.path, data)


# The longest test groups, longest first (measured: the time per test file at the end of a
# run). pytest-xdist hands groups out in collection order (dev.py passes
# --no-loadscope-reorder), the first two to each worker in turn, then each to the first
# worker free: the long ones start at once and the short ones fill in around them. The
# builder of a shared run (built_once) comes before its readers on the same worker.
LONGEST_GROUPS = (
    "tests.test_kpi_mart_sample",  # builds sample_history
    "tests/test_crash_recovery.py::test_runs_killed_during_ingestion_dbt_and_publication_are_"
    "recovered",  # builds small_pipeline at its end
    "tests.test_postgres",
    "tests.test_dashboard",  # an Evidence build (over 2 minutes of CPU) and Chromium
    "tests/test_pipeline_end_to_end.py::test_two_runs_at_once_never_write_the_warehouse_together",
    "tests/test_restatement_runs.py::test_a_restated_key_kpi_is_refused_then_accepted_then_"
    "published_through_dagster",  # two runs on a copy of small_pipeline
    "tests.test_bad_input_pipeline",
    "tests.test_poison_records",
    "tests.test_restatements",
    "tests.test_web_incremental",
    "tests.test_dbt_test_scope",
)


def _group(item: pytest.Item) -> str:
    return item.get_closest_marker("xdist_group").args[0]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (--dist loadgroup), all the tests of a module run in one worker, so
    that its module-scoped fixtures are built once, unless the module is marked `apart`; the
    longest groups come first."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            apart = item.get_closest_marker("apart") is not None
            item.add_marker(pytest.mark.xdist_group(item.nodeid if apart else item.module.__name__))
    ranks = {name: rank for rank, name in enumerate(LONGEST_GROUPS)}
    items.sort(key=lambda item: ranks.get(_group(item), len(ranks)))


def pytest_terminal_summary(terminalreporter) -> None:
    """Where the suite's time goes: setup, call and teardown per test file (the shared
    fixtures count in the file of the first test that used them), slowest first."""
    per_file: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                per_file[report.nodeid.split("::")[0]] += report.duration
    if per_file:
        terminalreporter.write_sep("=", "time per test file")
        for path, seconds in sorted(per_file.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.1f} s  {path}")


# --- dbt and the published KPI mart, as the tests use them ---------------------------------


def run_dbt(
    *args: str,
    warehouse: Path,
    target: Path,
    pii_key: str,
    dbt_vars: dict | None = None,
    as_of_date: str | None = None,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """dbt on the project against `warehouse`, as the pipeline invokes it with the default
    settings, with `dbt_vars`, figures as of `as_of_date`; its artifacts and log go to
    `target`."""
    invocation = DbtInvocation(
        Settings.from_env({PII_KEY_VARIABLE: pii_key}),
        dbt_vars=dbt_vars or {},
        as_of_date=as_of_date,
        warehouse=warehouse,
    )
    return invocation.run(
        *args, target_path=target, capture_output=True, text=True, timeout=timeout
    )


def load_landing(
    warehouse: Path, landing: Path, sources=SOURCES, extract_date=None
) -> list[FileLoad]:
    """Loads a landing folder (every extract date, or one) into `warehouse` with the project's
    own loader, as the ingestion assets do; every file and record must load."""
    window = Settings.from_env(FIXTURE_SETTINGS.get(landing.name, {})).plausible_dates
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    days = [extract_date] if extract_date else extract_dates(landing)
    with duckdb.connect(str(warehouse)) as conn:
        loads = [
            load
            for day in days
            for source in sources
            for load in load_files(conn, landed_files(landing, source, day)[0], landing, window)
        ]
    assert [load for load in loads if load.status != "loaded" or load.rows_quarantined] == []
    return loads


def publish_fixture(tmp_path_factory: pytest.TempPathFactory, landing_fixture: str) -> Path:
    """The KPI mart of a landing fixture: loaded by the project's loader, built by `dbt build`
    of the whole project (models and data tests) as of its latest extract date, and published
    by the project's publication, as a pipeline run does without Dagster's fixed cost (the
    run through Dagster is tested on landing_small). Returns the published mart."""
    root = tmp_path_factory.mktemp(landing_fixture)
    warehouse = root / "build" / "warehouse.duckdb"
    load_landing(warehouse, FIXTURES / landing_fixture)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        as_of = latest_extract_date(conn)
    built = run_dbt(
        "build",
        # The unit tests do not read the fixture: the pipeline runs check them.
        *("--exclude", "resource_type:unit_test"),
        warehouse=warehouse,
        target=root / "target",
        pii_key="test-key-for-boussole-tests",
        as_of_date=as_of,
    )
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-2000:]
    return publish_marts(warehouse, root / "published" / "boussole.duckdb").path


def all_kpi_rows(published: Path) -> list[tuple]:
    """Every row of kpi_values in the published mart, in a stable order."""
    with duckdb.connect(str(published), read_only=True) as conn:
        return conn.execute("select * from kpi_values order by all").fetchall()


def kpi_series(
    published: Path,
    kpi_id: str,
    grain: str,
    dimension: str = "all",
    dimension_value: str = "all",
    column: str = "value",
) -> dict[str, float | None]:
    """{period_start: column} of one KPI, grain and slice in the published mart."""
    conn = duckdb.connect(str(published), read_only=True)
    try:
        found = conn.execute(
            f"select period_start::varchar, {column} from kpi_values where kpi_id = ? "
            "and grain = ? and dimension = ? and dimension_value = ? order by period_start",
            [kpi_id, grain, dimension, dimension_value],
        ).fetchall()
    finally:
        conn.close()
    return dict(found)


def kpi_slices(published: Path, kpi_id: str, grain: str, dimension: str) -> dict[tuple, float]:
    """{(period_start, dimension_value): value} of one KPI, grain and slice dimension."""
    conn = duckdb.connect(str(published), read_only=True)
    try:
        found = conn.execute(
            "select period_start::varchar, dimension_value, value from kpi_values "
            "where kpi_id = ? and grain = ? and dimension = ? order by all",
            [kpi_id, grain, dimension],
        ).fetchall()
    finally:
        conn.close()
    return {(period, value_of): value for period, value_of, value in found}


def nonzero(values: dict[str, float | None]) -> dict[str, float | None]:
    """Without the zero rows that fill the empty periods of an additive KPI."""
    return {period: value for period, value in values.items() if value != 0}


@pytest.fixture
def webhook(monkeypatch):
    """Starts local webhooks (tests/webhook.py) on demand, reached without a proxy, and stops
    them when the test ends."""
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    started = []

    def start(**behaviour):
        started.append(Webhook(**behaviour))
        return started[-1]

    yield start
    for server in started:
        server.close()

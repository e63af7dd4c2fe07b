"""Recovery after a crash: `boussole run` killed with kill -9 during ingestion, during the dbt
build and during publication; each next run fails the dead one, frees its slot in the
warehouse pool (limit 1, from the project's dagster.yaml), and the last one publishes the same
kpi_values as an uninterrupted run (orchestration/recovery.py, boussole/publication.py)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from boussole.audit_scope import forget_publication
from boussole.settings import Settings
from tests.conftest import (
    BOUSSOLE,
    PROJECT_ROOT,
    Workspace,
    copy_workspace,
    make_workspace,
)

# The reference is the shared uninterrupted run of landing_small (conftest.small_pipeline).
pytestmark = [pytest.mark.e2e, pytest.mark.apart]

TIMEOUT_SECONDS = 600
REASON = "ended without finishing it; marked failed by the next run"


def started(workspace: Workspace) -> subprocess.Popen:
    """`boussole run` as the leader of its own process group (dbt runs as its child)."""
    workspace.data.mkdir(parents=True, exist_ok=True)
    log = (workspace.data / "runs.log").open("a")
    return subprocess.Popen(
        [str(BOUSSOLE), "run"],
        env=workspace.env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def steps(instance: dg.DagsterInstance, run_id: str, event: dg.DagsterEventType) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=event).records
    return [record.event_log_entry.step_key for record in records]


def kill_when(
    process: subprocess.Popen,
    instance: dg.DagsterInstance,
    known: set[str],
    ready: Callable[[str], bool],
    now: Callable[[str], bool] = lambda run_id: True,
) -> str:
    """Kills the process group of `process` with SIGKILL at a moment of the run it started:
    once ready(run id) (read from the Dagster instance as the run goes), as soon as now(run
    id) (read from files while the group is stopped with SIGSTOP, at short intervals, so that
    a short moment is not missed). Returns the killed run's id."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    group = os.getpgid(process.pid)
    run_id = None
    while run_id is None or not ready(run_id):
        # The new run is created after its recovery: from then on, no dead run holds the pool.
        dead_holders = {slot.run_id for slot in pool_slots(instance).claimed_slots} & known
        if time.monotonic() > deadline or process.poll() is not None or (run_id and dead_holders):
            os.killpg(group, signal.SIGKILL)
            pytest.fail(f"the run never got there; dead runs holding the pool: {dead_holders}")
        time.sleep(0.1)
        runs = [run for run in instance.get_runs(limit=5) if run.run_id not in known]
        run_id = runs[0].run_id if runs else None
    while time.monotonic() < deadline and process.poll() is None:
        os.killpg(group, signal.SIGSTOP)
        if now(run_id):
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=60)
            return run_id
        os.killpg(group, signal.SIGCONT)
        time.sleep(0.01)
    os.killpg(group, signal.SIGKILL)
    pytest.fail("the run went past the moment to kill it")


def pool_slots(instance: dg.DagsterInstance):
    return instance.event_log_storage.get_concurrency_info("duckdb_warehouse")


def started_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return steps(instance, run_id, dg.DagsterEventType.STEP_START)


def dbt_built_sessions(workspace: Workspace) -> Callable[[str], bool]:
    """dbt has committed the incremental web models up to the sessions (not the rest)."""

    def now(run_id: str) -> bool:
        step_output = workspace.data / "logs" / f"{run_id}.log"
        return step_output.exists() and any(
            "OK created" in line and "int_web__sessions" in line
            for line in step_output.read_text(errors="replace").splitlines()
        )

    return now


def temporary_files(workspace: Workspace) -> list[str]:
    folder = workspace.published.parent
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != workspace.published.name)


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return " ".join(r.event_log_entry.dagster_event.message for r in records.records)


def kpi_rows(published: Path) -> list[tuple]:
    conn = duckdb.connect(str(published), read_only=True)
    try:
        return conn.execute("select * from kpi_values order by all").fetchall()
    finally:
        conn.close()


def test_runs_killed_during_ingestion_dbt_and_publication_are_recovered(
    tmp_path, request, monkeypatch
):
    workspace = make_workspace(tmp_path, "landing_small")
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    killed: dict[str, int] = {}
    with dg.DagsterInstance.get() as instance:

        def kill(ready: Callable[[str], bool], now: Callable[[str], bool] = lambda _: True):
            process = started(workspace)
            killed[kill_when(process, instance, set(killed), ready, now)] = process.pid

        # Each run gets past the point where the one before it was killed, which proves that
        # the dead run's slot in the pool was freed (before the fix, the second run waited).
        # 1. During ingestion: one source loaded, the next one being loaded.
        kill(lambda run_id: len(started_steps(instance, run_id)) >= 2)
        # 2. During the dbt build, halfway through the incremental web models.
        kill(
            lambda run_id: "dbt_models" in started_steps(instance, run_id),
            dbt_built_sessions(workspace),
        )
        # 3. During publication, while the new mart file is being written (a short moment:
        #    looked for at each step of the run from the end of its dbt build).
        kill(
            lambda run_id: (
                "dbt_models" in steps(instance, run_id, dg.DagsterEventType.STEP_SUCCESS)
            ),
            lambda _: any(name.endswith(".tmp") for name in temporary_files(workspace)),
        )
        orphans = temporary_files(workspace)
        assert any(name.endswith(".tmp") for name in orphans), orphans

        final = workspace.boussole("run")
        assert final.returncode == 0, final.stdout + final.stderr
        printed = (workspace.data / "runs.log").read_text() + final.stdout
        for run_id, pid in killed.items():
            run = instance.get_run_by_id(run_id)
            assert run.status == dg.DagsterRunStatus.FAILURE, run_id
            message = failure_message(instance, run_id)
            assert f"pid {pid} on host" in message and REASON in message, message
            assert f"Recovered after a crash: run {run_id}: the process of this run" in printed
        (final_run,) = [run for run in instance.get_runs(limit=1) if run.run_id not in killed]
        assert final_run.status == dg.DagsterRunStatus.SUCCESS
        warnings = " ".join(
            record.event_log_entry.user_message
            for record in instance.get_records_for_run(final_run.run_id).records
        )
        assert "removed the temporary files left by a publication" in warnings
        for name in orphans:
            assert name in warnings

    assert temporary_files(workspace) == []
    reference, _ = request.getfixturevalue("small_pipeline")
    assert kpi_rows(workspace.published) == kpi_rows(reference.published)


def interrupt_during_dbt(process: subprocess.Popen, step_output: Callable[[], str]) -> int:
    """Once the dbt build that `process` started has built a model (as `step_output()` shows),
    sends SIGINT to `process` alone, as Dagster's Terminate does; returns dbt's pid."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while "OK created" not in step_output():
        if time.monotonic() > deadline or process.poll() is not None:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("dbt never built a model:\n" + step_output()[-3000:])
        time.sleep(0.1)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    (dbt,) = [
        int(pid)
        for pid in children
        if b"dbt" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1]
    ]
    process.send_signal(signal.SIGINT)
    return dbt


def test_a_run_interrupted_during_dbt_stops_dbt_and_the_next_run_publishes(
    small_pipeline, tmp_path, monkeypatch
):
    """Dagster's Terminate interrupts the run's process (SIGINT to it alone): the run's steps
    run in that process, so the dbt step stops the dbt build it started, the run ends failed
    and frees its slot, and the next run publishes what an uninterrupted one does."""
    reference, _ = small_pipeline
    workspace = copy_workspace(reference, tmp_path)
    # Without a record of the served mart's build, the next run builds it again.
    forget_publication(Settings.from_env(workspace.env))
    dates = sorted(folder.name for folder in (workspace.landing / "crm").iterdir())
    tags = {
        "dagster/asset_partition_range_start": dates[0],
        "dagster/asset_partition_range_end": dates[-1],
    }
    output = tmp_path / "run.log"
    with output.open("w") as log:
        # As the run launcher starts a run: the Definitions' job in a process of its own.
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "dagster", "job", "execute"),
                *("-m", "orchestration.definitions", "-j", "boussole_pipeline"),
                *("--tags", json.dumps(tags)),
            ],
            env=workspace.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dbt = interrupt_during_dbt(process, lambda: output.read_text(errors="replace"))
    assert process.wait(timeout=120) != 0
    assert not Path(f"/proc/{dbt}").exists()

    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with dg.DagsterInstance.get() as instance:
        (interrupted,) = instance.get_runs(limit=1)
        assert interrupted.status == dg.DagsterRunStatus.FAILURE
        assert "dbt_models" in steps(instance, interrupted.run_id, dg.DagsterEventType.STEP_FAILURE)
        assert pool_slots(instance).claimed_slots == []
    # `boussole run` interrupted the same way (Ctrl-C reaches dbt too) says so.
    earlier = set(workspace.run_logs())
    process = started(workspace)
    dbt = interrupt_during_dbt(
        process,
        lambda: "".join(
            log.read_text(errors="replace") for log in set(workspace.run_logs()) - earlier
        ),
    )
    assert process.wait(timeout=120) == 130
    assert not Path(f"/proc/{dbt}").exists()
    printed = (workspace.data / "runs.log").read_text()
    assert "Interrupted: the published mart is unchanged." in printed
    assert "step dbt_models interrupted (Ctrl-C, or Terminate in the UI)" in printed

    final = workspace.boussole("run")
    assert final.returncode == 0, final.stdout + final.stderr
    assert "Recovered after a crash" not in final.stdout
    assert kpi_rows(workspace.published) == kpi_rows(reference.published)


def test_a_live_run_is_left_alone_and_a_dead_one_frees_its_slot(tmp_path, monkeypatch):
    """A run whose process is alive is never failed, even while it holds the pool's slot; once
    its process is dead (here still a zombie, not yet reaped), the next tick of the landing
    sensor fails it and frees its slot."""
    from boussole.settings import Settings
    from orchestration.automation import landing_files_sensor
    from orchestration.recovery import recover_dead_runs
    from orchestration.resources import LandingResource, SettingsResource

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    holder = textwrap.dedent(
        """
        import time
        import dagster as dg
        from orchestration.recovery import process_tags

        @dg.op(pool="duckdb_warehouse")
        def hold():
            time.sleep(300)

        @dg.job
        def holding():
            hold()

        holding.execute_in_process(instance=dg.DagsterInstance.get(), tags=process_tags())
        """
    )
    # The instance creates its storage before the holder opens it: two processes creating the
    # same fresh SQLite storage at once race on its schema (alembic_version already exists).
    with dg.DagsterInstance.get() as instance:
        process = subprocess.Popen([sys.executable, "-c", holder], env=os.environ.copy())
        try:
            deadline = time.monotonic() + 120
            while not (
                instance.get_runs()
                and steps(instance, instance.get_runs()[0].run_id, dg.DagsterEventType.STEP_START)
            ):
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
            (run,) = instance.get_runs()
            (tmp_path / "landing").mkdir()
            resources = {
                "landing": LandingResource(path=str(tmp_path / "landing")),
                "settings": SettingsResource.from_settings(Settings.from_env({})),
            }

            def sensor_tick():
                context = dg.build_sensor_context(instance=instance, resources=resources)
                assert isinstance(landing_files_sensor(context), dg.SkipReason)

            sensor_tick()
            assert recover_dead_runs(instance) == []
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

            os.kill(process.pid, signal.SIGKILL)
            while Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1][0] != "Z":
                time.sleep(0.05)
            sensor_tick()
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
            assert recover_dead_runs(instance) == []
            assert REASON in failure_message(instance, run.run_id)
            pool = pool_slots(instance)
            assert pool.claimed_slots == [] and pool.pending_steps == []
        finally:
            process.kill()
            process.wait()


def test_a_publication_removes_what_a_killed_one_left_not_what_another_writes(tmp_path):
    from boussole.publication import publish_marts

    build = tmp_path / "build.duckdb"
    with duckdb.connect(str(build)) as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.kpi_values as select 'revenue' as kpi_id, 1 as value")
    published = tmp_path / "published" / "boussole.duckdb"
    published.parent.mkdir()
    writer = (
        "import duckdb, sys, time\n"
        "conn = duckdb.connect(sys.argv[1])\n"
        "conn.execute('create table t as select range as x from range(1000)')\n"
        "print('written', flush=True)\n"
        "time.sleep(300)\n"
    )
    killed, live = (published.parent / f".boussole.duckdb.{name}.tmp" for name in ("a", "b"))
    writers = [
        subprocess.Popen([sys.executable, "-c", writer, str(path)], stdout=subprocess.PIPE)
        for path in (killed, live)
    ]
    try:
        for process in writers:
            assert process.stdout.readline() == b"written\n"
        writers[0].kill()
        writers[0].wait()
        assert {p.name for p in published.parent.iterdir()} >= {killed.name, killed.name + ".wal"}

        result = publish_marts(build, published)

        assert sorted(p.name for p in result.orphans_removed) == [killed.name, killed.name + ".wal"]
        assert sorted(p.name for p in published.parent.iterdir()) == [
            live.name,
            live.name + ".wal",
            published.name,
        ]
    finally:
        for process in writers:
            process.kill()
            process.wait()

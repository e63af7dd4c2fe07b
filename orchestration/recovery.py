"""Recovery after a crash: the runs whose process died are failed, and their pool slots freed.

A run killed with `kill -9` (or by a reboot) stays STARTED in the Dagster instance and keeps
its slot in the `duckdb_warehouse` pool (limit 1), so every later run would wait for it
forever. Before a run starts, `boussole run`, the `boussole_daily` schedule and the
`landing_files_sensor` call `recover_dead_runs`: each unfinished run whose process is known
and gone is marked failed with the reason, and the slots of finished runs are freed.

A run's process is the host and pid that `boussole run` records as run tags
(`process_tags`), or, for a run launched by the daemon, the pid Dagster records in the run's
first engine event ("Started process for run (pid: N)") on the host the schedule or sensor
tagged. The pid must still name the same process: its start time (and the boot) must match,
so a reused pid never keeps a dead run alive, and a zombie counts as dead. A run on another
host, or whose process nothing names, is never touched: Dagster's run monitoring
(dagster.yaml) covers it. Only public `DagsterInstance` methods are used, those the Dagster UI
calls to fail a run and to free its concurrency slots.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

HOST_TAG = "boussole/host"
PID_TAG = "boussole/pid"
# "<boot id>:<start time in clock ticks since boot>" of the pid: tells a reused pid apart.
PROCESS_START_TAG = "boussole/process_start"

UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A process clock is read in whole seconds of boot time: allow for that.
START_TIME_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    message: str


def host_tags() -> dict[str, str]:
    """The tag naming the host that runs the requested run (schedule and sensor requests:
    the default run launcher starts the run on the host of the code server)."""
    return {HOST_TAG: socket.gethostname()}


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a run it executes itself (`boussole run`)."""
    tags = {**host_tags(), PID_TAG: str(os.getpid())}
    start = _process_start(os.getpid())
    if start is not None:
        tags[PROCESS_START_TAG] = start
    return tags


def recover_dead_runs(instance: dg.DagsterInstance) -> list[RecoveredRun]:
    """Fail the unfinished runs whose process ended, and free the pool slots they or any
    finished run still hold. Returns what was done, one message per run."""
    recovered = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        process = _run_process(instance, run)
        if process is None or _is_alive(*process):
            continue
        host, pid, _ = process
        reason = (
            f"the process of this run (pid {pid} on host {host}) ended without finishing it; "
            "marked failed by the next run"
        )
        current = instance.get_run_by_id(run.run_id)
        if current is not None and not current.is_finished:
            instance.report_run_failed(current, message=reason[0].upper() + reason[1:])
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(
            RecoveredRun(run.run_id, f"run {run.run_id}: {reason}, its pool slots freed")
        )
    recovered += _free_slots_of_finished_runs(instance)
    return recovered


def _free_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[RecoveredRun]:
    """A finished run holds no slot: one that still does (its process died while Dagster
    failed it, or between two steps) is freed now rather than after the run monitoring delay."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            status = run.status.value if run else "deleted"
            freed.append(RecoveredRun(run_id, f"run {run_id} ({status}): its pool slots freed"))
    return freed


def _run_process(
    instance: dg.DagsterInstance, run: dg.DagsterRun
) -> tuple[str, int, str | float] | None:
    """(host, pid, identity) of the process that executes the run, or None when unknown.
    The identity is the recorded start of the process, or the time by which it had started."""
    host = run.tags.get(HOST_TAG)
    if host is None:
        return None
    if PID_TAG in run.tags:
        return host, int(run.tags[PID_TAG]), run.tags.get(PROCESS_START_TAG, "")
    # Launched by the daemon: the run worker's pid is in the run's first engine event.
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for record in records:
        data = record.event_log_entry.dagster_event.event_specific_data
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return host, int(pid.value), record.event_log_entry.timestamp
    return None


def _is_alive(host: str, pid: int, identity: str | float) -> bool:
    """Whether the process is still the run's. True when it cannot be told (another host)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    if _is_zombie(pid):
        return False
    if isinstance(identity, str):
        # Recorded by the process itself: the same boot and start time, or another process.
        return not identity or identity == _process_start(pid)
    started = _process_start_epoch(pid)
    return started is None or started <= identity + START_TIME_SLACK_SECONDS


# --- the process table (Linux /proc; elsewhere only whether the pid exists) ------------------

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


def _process_start(pid: int) -> str | None:
    fields = _stat_fields(pid)
    try:
        boot_id = (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # starttime is field 22 of the stat line; state, field 3, is the first after the name.
    return f"{boot_id}:{fields[19]}" if fields is not None else None


def _process_start_epoch(pid: int) -> float | None:
    fields = _stat_fields(pid)
    try:
        stat = (PROC / "stat").read_text().split("\n")
    except OSError:
        return None
    boot_time = next((int(line.split()[1]) for line in stat if line.startswith("btime ")), None)
    if fields is None or boot_time is None:
        return None
    return boot_time + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def recover_before_request(
    context: dg.ScheduleEvaluationContext | dg.SensorEvaluationContext,
) -> None:
    """`recover_dead_runs` from a schedule or sensor evaluation, logged on its tick: the run
    it requests would otherwise wait behind a dead run in the queue and the pool."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:
        return  # evaluated without an instance (a unit test): no run to recover
    for recovered in recover_dead_runs(instance):
        context.log.warning(f"Recovered after a crash: {recovered.message}")

"""Following a dbt process while it runs, through its log of JSON events on stdout
(`DbtInvocation.follow`): each model, seed or test it finishes, with the row count of a table,
as soon as dbt reports it, and the log itself as the plain text dbt would have printed.

A reader thread drains the pipe as fast as dbt writes, so dbt never waits on whoever consumes
the nodes (the Dagster step writes an event or two per node to its instance meanwhile).
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

# The log line of dbt_project/macros/cross_engine/row_count.sql.
ROW_COUNT = re.compile(r"row_count (\d+)")
# dbt's events for a model, seed or test that finished.
NODE_RESULTS = ("LogModelResult", "LogSeedResult", "LogTestResult")


@dataclass(frozen=True)
class FinishedNode:
    """A model, seed or test dbt finished, as its log reports it."""

    unique_id: str
    # dbt's status of the node: success or error (a model or seed), pass, warn, fail or error
    # (a test).
    status: str
    execution_time: float
    # Of a table or seed (none for a view).
    row_count: int | None


def log_text(event: dict) -> str:
    """A dbt log event as its plain-text log would print it: time, then message."""
    info = event["info"]
    time = datetime.fromisoformat(info["ts"].replace("Z", "+00:00"))
    return f"{time:%H:%M:%S}  {info['msg']}"


def finished_nodes(
    process: subprocess.Popen, echo: Callable[[str], None]
) -> Iterator[FinishedNode]:
    """The models, seeds and tests `process` (dbt with JSON events on stdout) finishes, in the
    order it finishes them, until it closes its output; each log line goes to `echo` as plain text,
    except the row counts."""
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, name="dbt-log", daemon=True).start()
    row_counts: dict[str, int] = {}
    while (line := lines.get()) is not None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # not an event: something dbt or a library printed
            echo(line.rstrip("\n"))
            continue
        name, data = event["info"]["name"], event.get("data", {})
        node = data.get("node_info") or {}
        counted = ROW_COUNT.fullmatch(data.get("msg", "")) if name == "JinjaLogInfo" else None
        if counted and node.get("unique_id"):
            row_counts[node["unique_id"]] = int(counted.group(1))
            continue
        echo(log_text(event))
        if name in NODE_RESULTS and node.get("unique_id"):
            yield FinishedNode(
                unique_id=node["unique_id"],
                status=node.get("node_status", ""),
                execution_time=data.get("execution_time", 0.0),
                row_count=row_counts.pop(node["unique_id"], None),
            )

"""A progress bar for a Dagster run executing in this process, fed by the run's event log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

POLL_SECONDS = 1.0


@contextmanager
def step_progress(instance, run_id: str, total_steps: int) -> Iterator[None]:
    """Show steps done out of `total_steps` while the body runs the job with `run_id`.

    The run executes in this thread; a helper thread reads finished steps from the instance's
    event log (which Dagster writes as the run goes), so nothing is added to the run itself.
    """
    from dagster import DagsterEventType

    finished_types = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    stop = threading.Event()
    bar = tqdm(total=total_steps, unit="step", desc="pipeline", position=0, leave=True)

    def poll() -> None:
        seen: set[str] = set()
        while True:
            stopping = stop.wait(POLL_SECONDS)
            records = instance.get_records_for_run(run_id, of_type=finished_types).records
            for record in records:
                step = record.event_log_entry.step_key
                if step and step not in seen:
                    seen.add(step)
                    bar.set_postfix_str(step)
                    bar.update(1)
            if stopping:
                return

    poller = threading.Thread(target=poll, name="run-progress", daemon=True)
    poller.start()
    try:
        yield
    finally:
        stop.set()
        poller.join(timeout=30)
        bar.close()

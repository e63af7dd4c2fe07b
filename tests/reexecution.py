"""Re-executes a failed run of the pipeline from its failure, as the Dagster UI's "Re-execute
from failure" does, with the Dagster instance of DAGSTER_HOME:

    python -m tests.reexecution <run id>

Prints the new run's id, whether it succeeded and the steps it ran, as JSON."""

import json
import sys

import dagster as dg

from orchestration.definitions import defs


def pipeline_job() -> dg.JobDefinition:
    return defs.resolve_job_def("boussole_pipeline")


def reexecute_from_failure(parent_run_id: str) -> dict:
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(pipeline_job),
            instance=instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(parent_run_id, instance),
        )
        return {
            "run_id": result.run_id,
            "success": result.success,
            "steps": sorted({event.step_key for event in result.all_events if event.step_key}),
        }


if __name__ == "__main__":
    print(json.dumps(reexecute_from_failure(sys.argv[1])))
